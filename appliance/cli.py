"""`commonsbox`: the command line, a client of the agent's API like the web UI.

Every command takes --json to print the API's answer as JSON instead of text.
"""

import argparse
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

from .api.client import Client
from .errors import ApplianceError, Invalid
from .paths import DEFAULT_SOCKET, Paths


def _ago(ts: float) -> str:
    if not ts:
        return "never"
    seconds = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def parse_endpoint(value: str, default_port: int) -> dict:
    """HOST, HOST:PORT or [IPv6]:PORT."""
    host, port = value, default_port
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        port = int(port)
    except ValueError:
        raise Invalid(f"{port!r} is not a port number", "endpoint") from None
    return {"host": host, "port": port}


# -- printing ------------------------------------------------------------------------


def print_status(s: dict) -> None:
    vpn = s["vpn"]
    print(
        f"{s['box']['name']} (agent {s['version']}), configuration revision "
        f"{s['revision']['revision']}"
    )
    print(
        f"VPN {vpn['interface']} ({s['backend']} WireGuard), port {vpn['listen_port']}, "
        f"endpoint {vpn['endpoint'] or 'not set'}"
    )
    print(f"  public key {vpn['public_key']}")
    print(f"  subnets    {vpn['ipv4_subnet']}  {vpn['ipv6_subnet']}")
    labels = {"kernel_wireguard": "kernel WireGuard", "wireguard_go": "wireguard-go"}
    print(
        "  detected   "
        + ", ".join(
            f"{labels.get(k, k)}: {'yes' if v else 'no'}" for k, v in s.get("detected", {}).items()
        )
    )
    print_devices(vpn["devices"], live=True)
    if s.get("webui", {}).get("tls_sha256"):
        print(f"Web UI certificate SHA-256: {s['webui']['tls_sha256']}")
    print("Health:")
    for c in s["health"]:
        print(f"  [{'ok' if c['ok'] else '!!'}] {c['capability']}: {c['name']} — {c['detail']}")


def print_devices(devices: list[dict], live: bool = False) -> None:
    if not devices:
        print("  no devices yet: commonsbox vpn device add NAME")
        return
    for d in devices:
        line = f"  {d['id']:>4}  {d['name']}  {d['ipv4']}  {d['mode']}"
        if live:
            line += (
                f"  handshake {_ago(d['latest_handshake'])}"
                f"  ↓{_bytes(d['rx_bytes'])} ↑{_bytes(d['tx_bytes'])}"
            )
        print(line)


def print_change(result: dict) -> None:
    print(f"saved as revision {result['revision']}")
    if not result["applied"]:
        for o in result["reconcile"]:
            if o["error"]:
                print(f"warning: {o['capability']} not applied yet: {o['error']}", file=sys.stderr)


# -- commands ------------------------------------------------------------------------


def cmd_status(api: Client, args) -> object:
    return api.call("status")


def cmd_setup_code(api: Client, args) -> object:
    return api.call("setup.code", renew=args.renew)


def cmd_image_keygen(api: Client, args) -> object:
    from .imagesign import keygen

    return {"public_key": keygen(Path(args.key), Path(args.pub))}


def cmd_image_sign(api: Client, args) -> object:
    from .imagesign import sign

    signature = sign(Path(args.manifest), Path(args.key), test_image=args.test_image)
    return {"signature": str(signature)}


def cmd_image_verify(api: Client, args) -> object:
    from .imagesign import describe, verify

    info = verify(Path(args.manifest), Path(args.pub).read_text())
    return {
        "verified": True,
        "test_image": info["test_image"],
        "kind": describe(info),
        "board": info.get("board"),
        "sha256": info.get("sha256"),
        "packages": len(info.get("packages", {})),
    }


def cmd_vpn_set(api: Client, args) -> object:
    changes = {}
    for key in ("interface", "listen_port", "ipv4_subnet", "ipv6_subnet", "devices_per_member"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.endpoint is not None:
        port = changes.get("listen_port") or api.call("vpn.settings.get")["listen_port"]
        changes["endpoint"] = None if args.endpoint == "" else parse_endpoint(args.endpoint, port)
    if args.dns is not None:
        changes["dns"] = args.dns
    if args.home_network is not None:
        changes["home_networks"] = args.home_network
    return api.call("vpn.settings.set", why=args.why, **changes)


def cmd_device_add(api: Client, args) -> object:
    return api.call(
        "vpn.device.add",
        name=args.name,
        mode=args.mode,
        dns=args.dns,
        preshared_key=args.psk,
        public_key=args.public_key,
        why=args.why,
    )


def cmd_device_update(api: Client, args) -> object:
    changes = {k: getattr(args, k) for k in ("name", "mode", "dns") if getattr(args, k) is not None}
    return api.call("vpn.device.update", device=args.device, why=args.why, **changes)


def cmd_device_list(api: Client, args) -> object:
    return api.call("status")["vpn"]["devices"]


def cmd_device_show(api: Client, args) -> object:
    from .vpn.export import qr_png, qr_svg, qr_terminal

    result = {"device": api.call("vpn.device.get", device=args.device)}
    result.update(api.call("vpn.device.config", device=args.device))
    if args.png:
        Path(args.png).write_bytes(qr_png(result["config"]))
    if args.svg:
        Path(args.svg).write_text(qr_svg(result["config"]))
    if args.qr:
        result["qr"] = qr_terminal(result["config"])
    return result


def cmd_device_remove(api: Client, args) -> object:
    return api.call("vpn.device.remove", device=args.device, why=args.why)


def cmd_history(api: Client, args) -> object:
    return api.call("config.history", limit=args.limit)


def cmd_diff(api: Client, args) -> object:
    return api.call("config.diff", a=args.a, b=args.b)


def cmd_rollback(api: Client, args) -> object:
    return api.call("config.rollback", revision=args.revision)


def cmd_pin(api: Client, args) -> object:
    return api.call("config.pin", revision=args.revision, pinned=args.pin_cmd == "pin")


def cmd_keep(api: Client, args) -> object:
    return api.call("config.retention", keep=args.keep)


def _switch(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def cmd_mail_set(api: Client, args) -> object:
    changes = {
        k: v
        for k, v in (
            ("enabled", _switch(args.mail)),
            ("domain", args.domain),
            ("max_message_mib", args.max_message_mib),
            ("quota_mib", args.quota_mib),
            ("delete_fetched_after_days", args.delete_fetched_after_days),
            ("encrypted_only", _switch(args.encrypted_only)),
        )
        if v is not None
    }
    if args.smarthost is not None:
        if args.smarthost == "":
            changes["smarthost"] = None
        else:
            host, _, port = (
                args.smarthost.rpartition(":")
                if ":" in args.smarthost
                else (args.smarthost, "", "587")
            )
            changes["smarthost"] = {
                "host": host,
                "port": int(port),
                **({"username": args.smarthost_user} if args.smarthost_user else {}),
            }
    password = (
        Path(args.smarthost_password_file).read_text().strip()
        if args.smarthost_password_file
        else None
    )
    return api.call("mail.settings.set", why=args.why, smarthost_password=password, **changes)


def cmd_chat_set(api: Client, args) -> object:
    changes = {
        k: v
        for k, v in (
            ("enabled", _switch(args.chat)),
            ("archive_days", args.archive_days),
            ("upload_mib", args.upload_mib),
        )
        if v is not None
    }
    return api.call("chat.settings.set", why=args.why, **changes)


def cmd_app_password_add(api: Client, args) -> object:
    from .vpn.export import qr_terminal

    result = api.call("mail.password.add", owner=args.user, label=args.label, why=args.why)
    if args.qr:
        result["qr"] = qr_terminal(result["client"]["dclogin"])
    return result


def cmd_app_password_list(api: Client, args) -> object:
    return api.call("mail.password.list", owner=args.user)


def cmd_app_password_remove(api: Client, args) -> object:
    return api.call("mail.password.remove", id=args.id, why=args.why)


def cmd_mail_dns(api: Client, args) -> object:
    return api.call("mail.dns", check=args.check)


DNS_STATES = {
    "published": "published",
    "missing": "NOT PUBLISHED",
    "different": "DIFFERENT: DNS says",
    "unknown": "could not check",
}


def _secret(path: str | None, prompt: str, twice: bool = False) -> str:
    """A passphrase from a file (first line) or typed, unseen, on the terminal."""
    if path:
        lines = Path(path).read_text().splitlines()
        return lines[0] if lines else ""
    import getpass

    value = getpass.getpass(f"{prompt}: ")
    if twice and getpass.getpass(f"{prompt} (again): ") != value:
        raise Invalid("the two entries differ", "passphrase")
    return value


def cmd_storage_status(api: Client, args) -> object:
    return api.call("storage.status")


def cmd_storage_disks(api: Client, args) -> object:
    return api.call("storage.disks")


def cmd_storage_format(api: Client, args) -> object:
    disk = next((d for d in api.call("storage.disks") if d["name"] == args.disk), None)
    if disk is None:
        raise Invalid(f"there is no disk {args.disk!r} (see: commonsbox storage disks)", "disk")
    confirm = args.confirm
    if confirm is None:
        print(
            f"{disk['name']}: {disk['confirm_name']}, {_bytes(disk['size'])}, holds: "
            f"{disk['contents']}. EVERYTHING ON IT WILL BE ERASED.",
            file=sys.stderr,
        )
        confirm = input(f"Type {disk['confirm_name']!r} to erase it: ")
    return api.call(
        "storage.format",
        disk=args.disk,
        confirm=confirm,
        cipher=args.cipher,
        passphrase=_secret(args.passphrase_file, "the household's storage passphrase", twice=True),
    )


def cmd_storage_unlock(api: Client, args) -> object:
    return api.call("storage.unlock", key=_secret(args.key_file, "passphrase or recovery key"))


def cmd_storage_lock(api: Client, args) -> object:
    return api.call("storage.lock")


def cmd_storage_passphrase(api: Client, args) -> object:
    return api.call(
        "storage.passphrase",
        old=_secret(args.old_file, "current passphrase"),
        new=_secret(args.new_file, "new passphrase", twice=True),
    )


def cmd_storage_recovery_key(api: Client, args) -> object:
    return api.call("storage.recovery_key", passphrase=_secret(args.passphrase_file, "passphrase"))


def cmd_storage_usb_key(api: Client, args) -> object:
    passphrase = _secret(args.passphrase_file, "passphrase")
    if args.action == "remove":
        return api.call("storage.usb_key.remove", passphrase=passphrase)
    if args.disk is None:
        raise Invalid("name the USB stick (see: commonsbox storage disks)", "disk")
    return api.call("storage.usb_key.add", disk=args.disk, passphrase=passphrase)


def cmd_storage_unencrypted(api: Client, args) -> object:
    return api.call("storage.settings.set", allow_unencrypted=args.choice == "on", why=args.why)


def cmd_files_set(api: Client, args) -> object:
    return api.call("files.settings.set", enabled=args.choice == "on", why=args.why)


def cmd_files_connection(api: Client, args) -> object:
    return api.call("files.connection", owner=args.owner)


def cmd_files_password(api: Client, args) -> object:
    return api.call("files.password", owner=args.owner)


def print_files(c: dict) -> None:
    print(f"file share: {'on' if c['enabled'] else 'OFF'}; through the VPN only")
    print(f"  {c['url']}  (SFTP: server {c['host']}, port {c['port']}, user {c['user']})")
    print(f"  the app will ask you to trust the box's key: {c['host_key']}")
    if "password" in c:
        print(f"  FILES PASSWORD: {c['password']}  (shown this once)")
    elif not c["has_password"]:
        print("  no files password yet: commonsbox files password")


def cmd_ssh_list(api: Client, args) -> object:
    return api.call("ssh.access")


def cmd_ssh_add(api: Client, args) -> object:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    return api.call("ssh.key.add", key=text, name=args.name, why=args.why)


def cmd_ssh_remove(api: Client, args) -> object:
    return api.call("ssh.key.remove", fingerprint=args.fingerprint, why=args.why)


def print_ssh(access: dict) -> None:
    if not access["enabled"]:
        print("installer's SSH: OFF (no key; add one with: commonsbox ssh add KEY.pub)")
        return
    print(
        f"installer's SSH: on, port {access['port']}, user {access['user']}, from the VPN "
        f"and the home's network; by key only"
    )
    print(f"  the box's host key: {access['host_key']}")
    for k in access["keys"]:
        print(
            f"  {k['fingerprint']}  {k['kind']:<12} {k['name']}"
            + (f"  (added by {k['owner']})" if k["owner"] else "")
        )


def _new_passphrase(name: str) -> str:
    """Typed twice, unseen, on a terminal; else the first line of standard input. Never
    an argument: those show in `ps` and in the shell's history."""
    if sys.stdin.isatty():
        return _secret(None, f"passphrase for {name}", twice=True)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise Invalid("no passphrase on standard input (give it on the first line)", "passphrase")
    return line


# A name, an IPv4 address or a bracketed IPv6 address, and a port: it goes into a link.
WEB_ADDRESS = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
)


def _web_address(api: Client, given: str | None) -> str:
    """HOST[:PORT] of the web UI as a newcomer reaches it: given, else the box's public
    name (the VPN endpoint's host; the web UI is on 443 there)."""
    if given is None:
        endpoint = api.call("vpn.settings.get")["endpoint"]
        if endpoint is None:
            raise Invalid("the box has no public address yet: give --address HOST", "address")
        host = endpoint["host"]
        given = f"[{host}]" if ":" in host else host
    match = WEB_ADDRESS.fullmatch(given)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise Invalid(f"{given!r} is not a HOST or HOST:PORT", "address")
    return given


def cmd_users_list(api: Client, args) -> object:
    return api.call("users.list")


def cmd_users_add(api: Client, args) -> object:
    passphrase = _new_passphrase(args.name)
    return api.call("users.add", name=args.name, role=args.role, passphrase=passphrase)


def cmd_users_invite(api: Client, args) -> object:
    from .vpn.export import qr_terminal

    address = _web_address(api, args.address)  # before the invitation: a bad one makes none
    made = api.call("users.invite", name=args.name, role=args.role)
    url = f"https://{address}/join/{made['token']}"
    return {**made, "url": url, "qr": qr_terminal(url)}


def print_invitation(made: dict) -> None:
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(made["expires"]))
    print(f"invitation for {made['name']} ({made['role']}), works once, until {until}:")
    print(f"  {made['url']}")
    print(made["qr"], end="")


def cmd_hardware_status(api: Client, args) -> object:
    return api.call("hardware.status")


def print_hardware(status: dict) -> None:
    print(f"board: {status['board']['model'] or status['board']['id']} ({status['board']['id']})")
    for name, d in status["devices"].items():
        print(
            f"  {name:<12} {d['state']:<8} {d['model']}"
            + (f"  ({d['reason']})" if d["reason"] else "")
        )
    r = status["readings"]
    if r["temperature_c"] is not None:
        print(f"  temperature: {r['temperature_c']:.1f} °C")
    if r["rtc_time"]:
        print(f"  clock: {r['rtc_time']}" + ("" if r["rtc_trusted"] else " (NOT TRUSTED: set it)"))


def print_storage(status: dict) -> None:
    v = status["volume"]
    if v is None:
        print(
            "encrypted storage: none yet"
            + (
                "; data kept unencrypted by the household's choice"
                if status["allow_unencrypted"]
                else "; mail and chat wait for it"
            )
        )
    else:
        state = ("unlocked" if v["mounted"] else "LOCKED") if v["present"] else "DISK MISSING"
        print(f"encrypted storage: {v['disk']} ({v['cipher']}): {state}")
        print(f"  key slots: {', '.join(f'{k} ({kdf})' for k, kdf in v['key_slots'].items())}")
    print(f"  this box's cipher: {status['suggested_cipher']} ({status['why']})")


def print_client(result: dict) -> None:
    c = result["client"]
    print(
        f"app password {result['app_password']['id']} for {c['address']} "
        f"({result['app_password']['label']}): {c['password']}"
    )
    print("  it is shown this once; the box keeps only its hash")
    print(
        f"  IMAP {c['imap']['host']} port {c['imap']['port']} ({c['imap']['security']}), "
        f"SMTP {c['smtp']['host']} port {c['smtp']['port']} ({c['smtp']['security']})"
    )
    if "xmpp" in c:
        print(f"  XMPP {c['xmpp']['jid']} (server {c['xmpp']['host']}, port {c['xmpp']['port']})")
    print(f"  Delta Chat: {c['dclogin']}")
    if result.get("qr"):
        print(result["qr"], end="")


def show_text(args, result) -> None:
    match args.func:
        case f if f is cmd_status:
            print_status(result)
        case f if f is cmd_device_list:
            print_devices(result, live=True)
        case f if f is cmd_device_show:
            d = result["device"]
            print(
                f"# {d['name']} ({d['mode']} tunnel) — save as {result['file_name']}",
                file=sys.stderr,
            )
            print(result.get("qr") or result["config"], end="")
        case f if f is cmd_setup_code:
            until = time.strftime("%Y-%m-%d %H:%M", time.localtime(result["expires"]))
            print(
                f"setup code: {result['code']}  (valid until {until}, or until the box is claimed)"
            )
        case f if f in (cmd_image_keygen, cmd_image_sign, cmd_image_verify):
            for key, value in result.items():
                print(f"{key}: {value}")
        case f if f is cmd_history:
            for r in result:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["at"]))
                pin = "pinned" if r.get("pinned") else ""
                print(f"{r['revision']:>5}  {when}  {r['who']:<12}  {pin:<6}  {r['why']}")
        case f if f is cmd_pin:
            print(f"revision {result['revision']} is {'' if result['pinned'] else 'not '}pinned")
        case f if f is cmd_keep:
            print(f"the newest {result['keep']} revisions are kept, and any pinned")
        case f if f is cmd_diff:
            print(
                result["diff"] or f"revisions {result['a']} and {result['b']} are the same",
                end="" if result["diff"] else "\n",
            )
        case f if f is cmd_app_password_add:
            print_client(result)
        case f if f is cmd_app_password_list:
            for p in result:
                print(f"{p['id']:>4}  {p['owner']:<16}  {p['label']}")
        case f if f is cmd_users_list:
            for u in result:
                print(f"{u['name']:<32}  {u['role']}")
        case f if f is cmd_users_invite:
            print_invitation(result)
        case f if f in (
            cmd_storage_status,
            cmd_storage_lock,
            cmd_storage_unlock,
            cmd_storage_usb_key,
        ):
            print_storage(result.get("status", result))
        case f if f is cmd_hardware_status:
            print_hardware(result)
        case f if f is cmd_storage_disks:
            for d in result:
                use = "the box's own" if d["system"] else ("STORAGE" if d["is_storage"] else "")
                print(
                    f"{d['name']:<8} {_bytes(d['size']):>10}  {'USB ' if d['usb'] else ''}"
                    f"{d['confirm_name']:<28} {d['contents']} {d['detail']} {use}"
                )
        case f if f in (cmd_storage_format, cmd_storage_recovery_key):
            if "status" in result:
                print_storage(result["status"])
            print(f"RECOVERY KEY: {result['recovery_key']}")
            print(
                "  write it down or print it, and keep it away from the box: it is shown "
                "this once, and opens the storage if the passphrase is lost"
            )
        case f if f in (cmd_files_connection, cmd_files_password):
            print_files(result)
        case f if f is cmd_ssh_list:
            print_ssh(result)
        case f if f in (cmd_ssh_add, cmd_ssh_remove):
            print_change(result)
            print_ssh(result["ssh"])
        case f if f is cmd_mail_dns:
            for r in result:
                print(f"{r['name']:<40} {r['type']:<5} {r['value']}")
                print(f"{'':<40} ; {r['why']}")
                if "state" in r:
                    print(
                        f"{'':<40} ; {DNS_STATES[r['state']]}"
                        + "".join(f"\n{'':<40} ;   {f}" for f in r["found"])
                        + (f" ({r['error']})" if r.get("error") else "")
                    )
        case _:
            print_change(result)
            if "device" in result and args.func is cmd_device_add:
                d = result["device"]
                print(
                    f"device {d['id']} ({d['name']}): {d['ipv4']}, {d['ipv6']}; "
                    f"show its QR code with: commonsbox vpn device show {d['id']} --qr"
                )


def add_users_commands(sub, leaf) -> None:
    users = sub.add_parser("users", help="the household's members").add_subparsers(
        dest="users_cmd", required=True
    )
    leaf(users, "list", cmd_users_list, "who may log in, and their role")
    p = leaf(users, "add", cmd_users_add, "make an account (passphrase typed, or on stdin)")
    p.add_argument("name")
    p.add_argument("--role", default="member", help="member or admin")
    p = leaf(users, "invite", cmd_users_invite, "a one-time link with which NAME joins")
    p.add_argument("name")
    p.add_argument("--role", default="member", help="member or admin")
    p.add_argument("--address", help="HOST[:PORT] of the web UI (default: the VPN endpoint)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a command's own parser must not reset --json given before the command.
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the answer as JSON"
    )
    parser = argparse.ArgumentParser(
        prog="commonsbox", description="Manage a Commonsbox through its agent."
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, default=None, help="the agent's API socket")
    where.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the agent's root directory (for a box in a namespace)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def leaf(parent, name, func, help_text):
        p = parent.add_parser(name, parents=[common], help=help_text)
        p.set_defaults(func=func)
        return p

    leaf(sub, "status", cmd_status, "the box's health, VPN and devices")
    p = leaf(sub, "setup-code", cmd_setup_code, "the one-time code that claims an unclaimed box")
    p.add_argument("--renew", action="store_true", help="make a new code; the old one dies")

    image = sub.add_parser("image", help="sign and verify OS images (local; no agent)")
    image = image.add_subparsers(dest="image_cmd", required=True)
    p = leaf(image, "keygen", cmd_image_keygen, "make an ed25519 signing key")
    p.add_argument("--key", required=True, help="where to write the private key (0600)")
    p.add_argument("--pub", required=True, help="where to write the public key")
    p = leaf(image, "sign", cmd_image_sign, "sign an image's manifest.json")
    p.add_argument("manifest")
    p.add_argument("--key", required=True)
    p.add_argument(
        "--test-image",
        action="store_true",
        help="the manifest is a TEST image's (a root command channel): sign it as one",
    )
    p = leaf(image, "verify", cmd_image_verify, "check a manifest's signature and image hash")
    p.add_argument("manifest")
    p.add_argument("--pub", required=True)

    vpn = sub.add_parser("vpn", help="the WireGuard VPN").add_subparsers(dest="vpn", required=True)
    p = leaf(vpn, "set", cmd_vpn_set, "change the VPN's settings")
    p.add_argument("--endpoint", help="the box's public HOST[:PORT] ('' to clear)")
    p.add_argument("--listen-port", type=int)
    p.add_argument("--interface")
    p.add_argument("--ipv4-subnet")
    p.add_argument("--ipv6-subnet")
    p.add_argument("--dns", action="append", help="default DNS server for devices (repeat)")
    p.add_argument("--home-network", action="append", help="a LAN 'home only' devices reach")
    p.add_argument("--devices-per-member", type=int, help="the most devices one member may add")
    p.add_argument("--why")

    dev = vpn.add_parser("device", help="family devices").add_subparsers(
        dest="device_cmd", required=True
    )
    p = leaf(dev, "add", cmd_device_add, "add a device and make its keys")
    p.add_argument("name")
    p.add_argument(
        "--mode",
        choices=("home", "full"),
        default="home",
        help="home: only the home network through the box; full: all traffic",
    )
    p.add_argument("--dns", action="append", help="DNS server for this device (repeat)")
    p.add_argument("--psk", action="store_true", help="add a preshared key")
    p.add_argument("--public-key", help="the device made its own key: its public half")
    p.add_argument("--why")
    p = leaf(dev, "update", cmd_device_update, "rename a device or change its mode or DNS")
    p.add_argument("device")
    p.add_argument("--name")
    p.add_argument("--mode", choices=("home", "full"))
    p.add_argument("--dns", action="append")
    p.add_argument("--why")
    leaf(dev, "list", cmd_device_list, "the devices and their last handshake")
    p = leaf(dev, "show", cmd_device_show, "print a device's wg-quick config or QR code")
    p.add_argument("device")
    p.add_argument("--qr", action="store_true", help="a QR code in the terminal")
    p.add_argument("--png", help="also write the QR code as PNG to this file")
    p.add_argument("--svg", help="also write the QR code as SVG to this file")
    p = leaf(dev, "remove", cmd_device_remove, "cut a device off at once")
    p.add_argument("device")
    p.add_argument("--why")

    mail = sub.add_parser("mail", help="mail (Postfix, Dovecot, DKIM)").add_subparsers(
        dest="mail_cmd", required=True
    )
    p = leaf(mail, "set", cmd_mail_set, "turn mail on or off, change its settings")
    p.add_argument("mail", nargs="?", choices=("on", "off"))
    p.add_argument("--domain", help="the household's domain: user@DOMAIN")
    p.add_argument("--max-message-mib", type=int)
    p.add_argument("--quota-mib", type=int, help="per mailbox")
    p.add_argument(
        "--delete-fetched-after-days",
        type=int,
        metavar="DAYS",
        help="delete mail from the box DAYS after an app fetched it (0: keep)",
    )
    p.add_argument(
        "--encrypted-only",
        choices=("on", "off"),
        help="refuse unencrypted mail between household members",
    )
    p.add_argument("--smarthost", help="HOST[:PORT] to send through ('' for none)")
    p.add_argument("--smarthost-user")
    p.add_argument("--smarthost-password-file", help="a file holding the smarthost's password")
    p.add_argument("--why")
    p = leaf(mail, "dns", cmd_mail_dns, "the DNS records to publish for the domain")
    p.add_argument(
        "--check",
        action="store_true",
        help="ask the box's resolver whether each record is published",
    )
    pw = mail.add_parser("password", help="app passwords (mail and chat)").add_subparsers(
        dest="password_cmd", required=True
    )
    p = leaf(pw, "add", cmd_app_password_add, "a new app password for a member's app")
    p.add_argument("user")
    p.add_argument("label", help='which app or device, e.g. "Alice\'s phone"')
    p.add_argument("--qr", action="store_true", help="the Delta Chat login as a QR code")
    p.add_argument("--why")
    p = leaf(pw, "list", cmd_app_password_list, "app passwords (not the passwords)")
    p.add_argument("user", nargs="?")
    p = leaf(pw, "remove", cmd_app_password_remove, "revoke an app password at once")
    p.add_argument("id", type=int)
    p.add_argument("--why")
    chat = sub.add_parser("chat", help="chat (Prosody, XMPP)").add_subparsers(
        dest="chat_cmd", required=True
    )
    p = leaf(chat, "set", cmd_chat_set, "turn chat on or off, change its settings")
    p.add_argument("chat", nargs="?", choices=("on", "off"))
    p.add_argument("--archive-days", type=int)
    p.add_argument("--upload-mib", type=int)
    p.add_argument("--why")

    st = sub.add_parser("storage", help="the household's encrypted storage").add_subparsers(
        dest="storage_cmd", required=True
    )
    leaf(st, "status", cmd_storage_status, "the encrypted storage: locked, unlocked, key slots")
    leaf(st, "disks", cmd_storage_disks, "the disks the box sees, and what they hold")
    p = leaf(st, "format", cmd_storage_format, "ERASE a disk and make it the encrypted storage")
    p.add_argument("disk", help="its name in `storage disks` (sda)")
    p.add_argument("--confirm", help="the disk's name as `storage disks` shows it (else asked)")
    p.add_argument(
        "--cipher",
        choices=("aes-xts", "adiantum"),
        help="instead of the one chosen for this box's processor",
    )
    p.add_argument("--passphrase-file")
    p = leaf(st, "unlock", cmd_storage_unlock, "unlock with the passphrase or recovery key")
    p.add_argument("--key-file")
    leaf(st, "lock", cmd_storage_lock, "stop mail and chat, then lock the storage")
    p = leaf(st, "passphrase", cmd_storage_passphrase, "change the storage passphrase")
    p.add_argument("--old-file")
    p.add_argument("--new-file")
    p = leaf(st, "recovery-key", cmd_storage_recovery_key, "a new recovery key (the old one dies)")
    p.add_argument("--passphrase-file")
    p = leaf(
        st,
        "usb-key",
        cmd_storage_usb_key,
        "a key on a USB stick that unlocks the storage when the box starts",
    )
    p.add_argument("action", choices=("add", "remove"))
    p.add_argument("disk", nargs="?", help="the stick's name in `storage disks` (sdb)")
    p.add_argument("--passphrase-file")
    p = leaf(
        st,
        "unencrypted",
        cmd_storage_unencrypted,
        "whether mail and chat may keep data unencrypted when there is no encrypted disk",
    )
    p.add_argument("choice", choices=("on", "off"))
    p.add_argument("--why")

    fs = sub.add_parser("files", help="the household's file share (SFTP, VPN only)").add_subparsers(
        dest="files_cmd", required=True
    )
    p = leaf(fs, "set", cmd_files_set, "turn the file share on or off")
    p.add_argument("choice", choices=("on", "off"))
    p.add_argument("--why")
    for name, fn, what in (
        ("connection", cmd_files_connection, "how to connect an app"),
        ("password", cmd_files_password, "a new files password"),
    ):
        p = leaf(fs, name, fn, what)
        p.add_argument("--owner", help="the member (for root, and managers acting for one)")

    ssh = sub.add_parser(
        "ssh", help="the installer's SSH: root, by key, off without one"
    ).add_subparsers(dest="ssh_cmd", required=True)
    leaf(ssh, "list", cmd_ssh_list, "the keys that may log in, and the box's host key")
    p = leaf(ssh, "add", cmd_ssh_add, "let a public key log in as root (turns SSH on)")
    p.add_argument("file", help="the public key file (KEY.pub), or - to read it from stdin")
    p.add_argument("--name", help="what to call it (default: the key's comment)")
    p.add_argument("--why")
    p = leaf(ssh, "remove", cmd_ssh_remove, "stop a key logging in (the last one: SSH off)")
    p.add_argument("fingerprint", help="SHA256:... as `commonsbox ssh list` shows it")
    p.add_argument("--why")

    hw = sub.add_parser("hardware", help="the board and its devices").add_subparsers(
        dest="hardware_cmd", required=True
    )
    leaf(hw, "status", cmd_hardware_status, "clock, temperature, display, watchdog, GPIO")

    add_users_commands(sub, leaf)

    cfg = sub.add_parser("config", help="configuration history").add_subparsers(
        dest="config_cmd", required=True
    )
    p = leaf(cfg, "history", cmd_history, "list revisions: who, when, why")
    p.add_argument("--limit", type=int, default=50)
    p = leaf(cfg, "diff", cmd_diff, "what changed between two revisions")
    p.add_argument("a", type=int)
    p.add_argument("b", type=int, nargs="?")
    p = leaf(cfg, "rollback", cmd_rollback, "restore a revision (as a new revision)")
    p.add_argument("revision", type=int)
    for verb, what in (("pin", "keep a revision however old"), ("unpin", "let it age out")):
        p = leaf(cfg, verb, cmd_pin, what)
        p.set_defaults(pin_cmd=verb)
        p.add_argument("revision", type=int)
    p = leaf(cfg, "keep", cmd_keep, "how many of the newest revisions are kept")
    p.add_argument("keep", type=int, nargs="?", help="set it (default 500)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    socket_path = args.socket or (Paths(args.root).socket if args.root else DEFAULT_SOCKET)
    try:
        # Generous: under emulation (the VM tier) turning mail on takes minutes.
        with Client(socket_path, timeout=900) as api:
            result = args.func(api, args)
    except OSError as err:  # the image commands read and write files
        print(f"commonsbox: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 1
    except ApplianceError as err:
        if args.json:
            print(json.dumps({"error": err.to_json()}), file=sys.stderr)
        else:
            where = f" ({err.field})" if err.field else ""
            print(f"commonsbox: {err.message}{where}", file=sys.stderr)
        return 2 if err.code in ("invalid", "conflict", "not_found", "pool_exhausted") else 1
    try:
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            show_text(args, result)
        sys.stdout.flush()
    except BrokenPipeError:
        return reader_gone()
    return 0


def reader_gone() -> int:
    """The reader went away (`commonsbox status | head -1`): stop quietly, as a tool
    ended by SIGPIPE does, and keep Python's exit-time flush from complaining."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
