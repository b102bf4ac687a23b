"""Small helpers the VM tests share."""

import html
import http.client
import json
import os
import re
import secrets
import ssl
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

ADMIN, ADMIN_PASS = "keeper", "a box that keeps our own 7"
SLOW = 900  # seconds a form may take under TCG (argon2id, mkfs, services, an update)


def wait_for(what, timeout: float = 90):
    """WHAT's first truthy answer, asked once a second (the guest answers; nothing sleeps
    in its place)."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(1)
    return found


@contextmanager
def phone_namespace(net: str):
    """A phone: a network namespace cabled to this machine (NET.1 here, NET.2 there),
    from where the guest's forwarded ports are reached as from the Internet."""
    from cblab.netns import Netns, run

    ns = Netns(f"cbvm-phone-{os.getpid()}")
    host_if = f"cbvmh{os.getpid() % 100000}"
    try:
        run(
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns.name]
        )
        run(["ip", "addr", "add", f"{net}.1/30", "dev", host_if])
        run(["ip", "link", "set", host_if, "up"])
        ns.run(["ip", "addr", "add", f"{net}.2/30", "dev", "eth0"])
        ns.run(["ip", "link", "set", "eth0", "up"])
        yield ns
    finally:
        ns.delete()  # takes the veth pair with it


def cli(vm, *args, timeout=900):
    answer = vm.run(["commonsbox", *args, "--json"], timeout=timeout)
    assert answer.rc == 0, answer.stderr
    return json.loads(answer.stdout)


def in_background(vm, argv: list[str]) -> threading.Thread:
    """ARGV running in the guest from a thread, so that the plug can be pulled under it
    (its end, an error once QEMU is killed, is nobody's business)."""

    def run():
        try:
            vm.run(argv, timeout=900)
        except Exception:  # noqa: BLE001 - the plug was pulled under it
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def fetch(vm, url: str, name: str) -> str:
    path = f"/var/lib/commonsbox/update/{name}"
    script = (
        "import os, urllib.request as u; os.makedirs('/var/lib/commonsbox/update', exist_ok=True); "
        f"u.urlretrieve({url!r}, {path!r})"
    )
    vm.run(["python3", "-c", script], timeout=600, check=True)
    return path


def after_restart(vm, version: str | None, timeout: float = 1500) -> dict:
    """The box's update status once it restarted into VERSION (None: whichever it
    settles on) and its gate has judged."""

    def settled():
        vm.channel = None  # the guest restarted: its end of the channel is new
        try:
            status = cli(vm, "update", "status", timeout=30)
        except Exception:  # still restarting
            time.sleep(5)
            return None
        done = version in (None, status["version"]) and not status["trial"]
        return status if done else None

    return wait_for(settled, timeout)


class Browser:
    """Just enough of a browser: one cookie jar, no redirects followed unasked."""

    def __init__(self, port: int, context: ssl.SSLContext):
        self.port, self.context, self.cookies = port, context, {}

    def request(self, method: str, path: str, form: dict | None = None, body=None, **headers):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=SLOW
        )
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body, headers)
            answer = conn.getresponse()
            text = answer.read().decode()
        finally:
            conn.close()
        for cookie in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return answer, html.unescape(text)

    def token(self, page: str) -> str:
        _, text = self.get(page)
        return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)

    def upload(self, page: str, action: str, field: str, path: Path):
        """Send the file at PATH as the form at ACTION on PAGE does (multipart), streamed."""
        boundary = secrets.token_hex(16)
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{self.token(page)}\r\n--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{field}"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def body():
            yield head
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            yield tail

        return self.request(
            "POST",
            action,
            body=body(),
            **{
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + path.stat().st_size + len(tail)),
            },
        )

    def get(self, path: str):
        return self.request("GET", path)

    def submit(self, page: str, action: str, form: dict):
        """Fill in the form at ACTION on PAGE (with its CSRF token) and send it; a redirect
        is followed, as a browser does."""
        answer, text = self.request("POST", action, {**form, "csrf_token": self.token(page)})
        if answer.status in (302, 303):
            location = answer.headers["Location"]
            return self.get(location[location.index("/", 8) :] if "://" in location else location)
        return answer, text


def manager(vm, folder: Path) -> Browser:
    """A manager logged in to the guest's web UI over its forwarded port: the box claimed
    through the setup page if nobody has, else an admin added by root on the box."""
    cert = folder / "webui.crt"
    cert.write_text(vm.run(["cat", "/var/lib/commonsbox/tls/webui.crt"], check=True).stdout)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the forwarded port is 127.0.0.1, the cert names the box
    browser = Browser(vm.webui_port, context)
    if not cli(vm, "status")["box"]["claimed"]:
        code = cli(vm, "setup-code")["code"]
        answer, text = browser.submit(
            "/setup",
            "/setup",
            {
                "code": code,
                "language": "en",
                "box_name": "VM box",
                "admin_name": ADMIN,
                "passphrase": ADMIN_PASS,
                "timezone": "UTC",
                "endpoint_host": "",
                "endpoint_port": "51820",
            },
        )
        assert answer.status == 200 and "VM box" in text, text
    else:  # claimed by a test before: root on the box adds this test's admin
        add = (
            "from appliance.api.client import Client; Client().call('users.add', "
            f"name={ADMIN!r}, role='admin', passphrase={ADMIN_PASS!r})"
        )
        vm.run(["python3", "-c", add], check=True)
        answer, text = browser.submit("/login", "/login", {"name": ADMIN, "passphrase": ADMIN_PASS})
        assert answer.status == 200 and "Log out" in text, text
    return browser
