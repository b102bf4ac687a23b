"""`make demo`: the box for real, in network namespaces on this machine.

Starts the agent in its own namespace and root directory, adds a phone, brings the
phone's exported config up with wg-quick in a second namespace, pings the box
through the tunnel and shows the live handshake. Ctrl-C tears everything down.
"""

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from appliance.api.client import AgentUnavailable, Client
from appliance.cli import print_status
from appliance.vpn.export import qr_terminal

from .sandbox import WebUI, World

PREFIX = "cbx-demo"
DOMAIN = "home.test"
WEB_PORT = 8443
RETRY_FIRST, RETRY_MAX = 0.2, 2.0  # seconds between tries while the agent is away


def say(text: str = "") -> None:
    print(text, flush=True)


def relay(world: World, api, box_ip: str, cli: str) -> None:
    """Mail and chat on, a member with an app password, and a message sent from the
    phone through the tunnel that lands in the member's inbox."""
    import imaplib
    import smtplib
    from email.message import EmailMessage

    from appliance.mail.service import client_settings

    from .relaylab import app_tls, in_netns

    # This machine has no disk to give the box: the demo keeps its data unencrypted.
    api.call("storage.settings.set", allow_unencrypted=True, why="demo: no disk to encrypt")
    api.call("mail.settings.set", enabled=True, domain=DOMAIN, why="demo: mail")
    api.call("chat.settings.set", enabled=True, why="demo: chat")
    import secrets

    api.call("users.add", name="demo", role="member", passphrase=secrets.token_urlsafe(18))
    login = api.call("mail.password.add", owner="demo", label="Demo phone")
    started = time.monotonic()
    with in_netns(world.phone_ns[0].name):
        smtp = smtplib.SMTP_SSL(box_ip, 465, context=app_tls(), timeout=30)
        imap = imaplib.IMAP4_SSL(box_ip, ssl_context=app_tls())
    m = EmailMessage()
    m["From"] = m["To"] = login["address"]
    m["Subject"] = "Hello from the demo phone"
    m.set_content("Sent through the VPN to the box's own Postfix, into Dovecot.")
    smtp.login(login["address"], login["password"])
    smtp.send_message(m)
    smtp.quit()
    imap.login(login["address"], login["password"])
    while True:
        imap.select("INBOX")
        if imap.search(None, "SUBJECT", '"Hello from the demo phone"')[1][0]:
            break
        if time.monotonic() - started > 30:
            say("  the demo message did NOT arrive within 30 s")
            break
        time.sleep(0.1)
    imap.logout()
    c = client_settings(box_ip, login["address"], login["password"], chat=True)
    say(f"""
Mail and chat (Postfix 3.10, Dovecot 2.4, OpenDKIM, Prosody 13 from the image's root):
  the phone sent a message over SMTP (TLS) through the tunnel and read it back over IMAP:
  {time.monotonic() - started:.2f} s.
  Account {login["address"]}, app password {login["password"]} (shown once; the box keeps
  its hash). From the phone's namespace, through the VPN, the servers are {box_ip}:
    IMAP {box_ip}:993 (TLS), SMTP {box_ip}:465 (TLS), XMPP {box_ip}:5222 (STARTTLS)
  A Delta Chat login for it (its QR code: {cli} mail password add demo "Another app" --qr):
    {c["dclogin"]}
  Add a mail or chat account for a member (members: the web UI, or {cli} users add NAME):
    {cli} mail password add demo "Demo laptop"
    {cli} mail dns        (what the household publishes in DNS for a real domain)""")


def watch(
    api: Client,
    device_id: int,
    every: float = 15.0,
    out: Callable[[str], None] = say,
    stop: threading.Event | None = None,
) -> None:
    """Every EVERY seconds, the demo phone's handshake and traffic, until STOP is set.

    The agent may restart under the demo (someone tried `kill`, or a test did): say so,
    and come back with a short backoff rather than die."""
    stop = stop or threading.Event()
    down_since: float | None = None
    wait = every
    while not stop.wait(wait):
        try:
            devices = api.call("status")["vpn"]["devices"]
        except AgentUnavailable:
            if down_since is None:
                down_since = time.monotonic()
                out(f"  {time.strftime('%H:%M:%S')} the agent is not answering; trying again")
            wait = min(RETRY_MAX, max(RETRY_FIRST, (time.monotonic() - down_since) / 2))
            continue
        if down_since is not None:
            out(
                f"  {time.strftime('%H:%M:%S')} the agent restarted "
                f"(away {time.monotonic() - down_since:.1f} s)"
            )
            down_since = None
        wait = every
        d = next((d for d in devices if d["id"] == device_id), None)
        if d is None:
            out(f"  {time.strftime('%H:%M:%S')} the demo phone is no longer a device of the box")
            continue
        age = time.time() - d["latest_handshake"] if d["latest_handshake"] else None
        out(
            f"  {time.strftime('%H:%M:%S')} {d['name']}: handshake "
            f"{f'{age:.0f} s ago' if age is not None else 'never'}, "
            f"{d['rx_bytes']} B in, {d['tx_bytes']} B out"
        )


def main() -> int:
    if os.geteuid() != 0:
        say("make demo needs root: it creates network namespaces.")
        return 1
    root = Path(tempfile.mkdtemp(prefix="commonsbox-demo-"))
    os.chmod(root, 0o755)
    cli = f"{Path(sys.executable).parent / 'commonsbox'} --root {root}"
    world = web = None
    pinger = None
    try:
        started = time.monotonic()
        say(
            "Starting the box: the agent, WireGuard, and the relay's daemons from the image's "
            "own Debian 13 root (built once, ~2 min, then cached)..."
        )
        world = World(PREFIX, root, phones=2, webui_user="nobody", relay_name=DOMAIN)
        api = world.api
        web = WebUI(world.box, WEB_PORT)
        status = api.call("status")
        say(
            f"Commonsbox agent ready in {time.monotonic() - started:.1f} s "
            f"({status['backend']} WireGuard), in network namespace {PREFIX}-box, root {root}"
        )
        api.call("vpn.settings.set", endpoint=World.ENDPOINT, why="demo: the box's address")
        device = api.call("vpn.device.add", name="Demo phone", mode="full")["device"]
        config = api.call("vpn.device.config", device=device["id"])["config"]
        say(
            f'\nAdded device {device["id"]} "Demo phone" ({device["ipv4"]}, full tunnel). '
            "Its QR code, as the WireGuard app would scan it:"
        )
        say(qr_terminal(config))
        world.phone(0, "cbxphone0", device["id"], config)
        box_ip = str(ipaddress.ip_network(status["vpn"]["ipv4_subnet"])[1])
        ping = world.phone_ns[0].run(["ping", "-n", "-c", "3", "-i", "0.2", box_ip], check=False)
        say(
            f"The phone (namespace {PREFIX}-p0) brought its config up with wg-quick and pinged "
            f"the box at {box_ip} through the tunnel:"
        )
        say(
            "  "
            + (
                ping.stdout.strip().splitlines()[-1]
                if ping.returncode == 0
                else "FAILED: " + ping.stdout + ping.stderr
            )
        )
        internet = world.phone_ns[0].ping(World.INTERNET, timeout=2)
        say(
            f"  and reached the 'internet' host {World.INTERNET} through the box's NAT: "
            f"{'yes' if internet else 'NO'}"
        )
        relay(world, api, box_ip, cli)
        say("\n$ commonsbox status")
        print_status(api.call("status"))
        web.wait_ready(timeout=120)  # a busy or slow machine: gunicorn and Flask start slowly
        setup = api.call("setup.code")
        say(f"""
The web UI: open {web.url} in a browser on this machine.
  Claim the box with the one-time setup code  {setup["code"]}
  The certificate is the box's own; check its SHA-256 fingerprint matches:
  {status["webui"]["tls_sha256"]}

Try, in another terminal (as root):
  {cli} status
  {cli} vpn device add "Laptop" --mode home
  {cli} vpn device show Laptop --qr
  {cli} config history
  ip netns exec {PREFIX}-p0 ping {box_ip}

A second "phone" is waiting, unconnected, in namespace {PREFIX}-p1. In the web UI, add a
device, download its .conf file, then connect that phone with it and ping the box:
  ip netns exec {PREFIX}-p1 wg-quick up /path/to/the-downloaded.conf
  ip netns exec {PREFIX}-p1 ping {box_ip}
Press Ctrl-C to stop; everything is torn down.""")
        # Keep the phone talking so the handshake stays fresh, like a phone in use.
        pinger = world.phone_ns[0].popen(
            ["ping", "-n", "-q", "-i", "5", box_ip],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        watch(api, device["id"])
    except KeyboardInterrupt:
        say("\nStopping: tearing the namespaces down.")
    finally:
        if pinger:
            pinger.terminate()
        if web:
            web.stop()
        if world:
            world.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
