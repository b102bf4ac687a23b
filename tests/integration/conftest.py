"""The integration tier: real namespaces, the real agent, real WireGuard and nftables.

Each test gets its own ``Lab`` (a sandbox.World): the box, family phones and an
"internet" host, all in network namespaces made here, so no packet leaves the machine.
"""

import contextlib
import html
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from appliance.api.client import Client
from cblab.sandbox import REPO, Phone, World

SUBNET4, SUBNET6 = "10.77.0.0/24", "fd00:77::/64"
BOX_VPN_IP = "10.77.0.1"
INTERNET = World.INTERNET
BOX_OUTSIDE_IP = World.ENDPOINT["host"]
_counter = itertools.count()
NOBODY = 65534  # the web UI's user in these tests, as it is its own user on the box


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "wg", "wg-quick", "wireguard-go", "nft", "ping", "setsid"):
        if not shutil.which(tool):
            return f"needs {tool} (`make test` installs it)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.netns)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"INTEGRATION TIER NOT RUN: {reason}"))


class Lab(World):
    """The World, set up the way the tests expect, with a few helpers to look at it."""

    def __init__(self, tmp_path, phones: int = 2, root=None, webui_user=None):
        self.tag = f"{os.getpid() % 10000}{next(_counter)}"
        self.tmp = tmp_path
        super().__init__(f"cbt{self.tag}", root or tmp_path / "box", phones, webui_user)
        self.api.call(
            "vpn.settings.set", endpoint=self.ENDPOINT, ipv4_subnet=SUBNET4, ipv6_subnet=SUBNET6
        )

    def phone(self, i: int, device, config: str | None = None) -> Phone:
        return super().phone(i, f"cbp{self.tag}{i}"[:15], device, config)

    def box_peer(self, public_key: str) -> dict | None:
        """The box's live view of a device. Views may show facts up to 2 s old, so
        reconcile first: it reads afresh and, with nothing to do, touches nothing."""
        assert not any(o["actions"] for o in self.api.call("reconcile"))
        devices = self.api.call("status")["vpn"]["devices"]
        by_key = {d["id"]: d for d in devices}
        for d in self.api.call("vpn.device.list"):
            if d["public_key"] == public_key:
                return by_key[d["id"]]
        return None

    def restart_agent(self, sig=signal.SIGTERM) -> None:
        self.api.close()
        self.box.stop(sig)
        self.box.start()

    def box_ifindex(self) -> int:
        out = self.box_ns.run(["ip", "-o", "link", "show", "wg0"]).stdout
        return int(out.split(":")[0])


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def lab(tmp_path):
    world = Lab(tmp_path)
    yield world
    world.close()


@pytest.fixture
def box(tmp_path):
    """Just the box, for API tests: no phones."""
    world = Lab(tmp_path, phones=0)
    yield world
    world.close()


# -- the web UI's tests --------------------------------------------------------------


class ClientAsWebUI(Client):
    """Connect with the web UI user's credentials (SO_PEERCRED reads them at connect)."""

    def _connect(self):
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
        try:
            super()._connect()
        finally:
            os.seteuid(0)
            os.setegid(0)


def csrf(page) -> str:
    """The CSRF token in a page's forms (PAGE: a Flask test client's answer)."""
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


# The web UI's page tests (test_webui_storage.py, test_webui_files.py): one box name, one
# passphrase for their members, and forms posted the way a browser posts them.
BASE = "https://box.test"
PASS = "three unrelated words 9"


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def post(web, url, data, page):
    """Submit DATA to URL as the form on PAGE does (with that page's CSRF token)."""
    return web.post(
        url, data={**data, "csrf_token": csrf(web.get(page, base_url=BASE))}, base_url=BASE
    )


def logged_in(app, name):
    web = app.test_client()
    answer = post(web, "/login", {"name": name, "passphrase": PASS}, "/login")
    assert answer.status_code == 302, text(answer)
    return web


@pytest.fixture
def app(box, monkeypatch):
    """A fresh web UI per test (its own form rate limit), speaking to BOX's agent."""
    import webui.agent
    from webui import create_app

    monkeypatch.setattr(webui.agent, "Client", ClientAsWebUI)
    box.box.paths.webui_state.mkdir(mode=0o700, exist_ok=True)  # as systemd's StateDirectory=
    return create_app(
        box.box.paths.socket, testing=True, uploads=box.box.paths.webui_state / "uploads"
    )


PRELUDE = """
import json, sys
from appliance.api.client import Client
from appliance.errors import ApplianceError
api = Client(sys.argv[1])
out = []
def call(method, session=None, **params):
    api.session = session
    try:
        result = {"ok": api.call(method, **params)}
    except ApplianceError as e:
        result = {"error": e.code}
    out.append([method, result])
    return result.get("ok")
"""


def as_webui(lab, script: str) -> list:
    """SCRIPT's calls (call(method, session, **params)) made as the web UI's user
    (nobody), the way the web UI makes them: [[method, {"ok": answer} or {"error": code}]]."""
    body = "try:\n" + "".join(f"    {line}\n" for line in script.strip().splitlines())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PRELUDE + body + "finally:\n    print(json.dumps(out))",
            str(lab.box.paths.socket),
        ],
        user=65534,
        group=65534,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@contextlib.contextmanager
def household_box(prefix: str, relay_name: str | None, claimed: bool = True):
    """A World with one phone, which the web UI's user (nobody) may reach, on the tests'
    VPN subnets, running the box's own root (its daemons) if it has a RELAY_NAME; claimed
    by the admin ana (PASS) unless CLAIMED is false. The phone's interface is named
    f"{world.prefix}p0"."""
    work = Path(tempfile.mkdtemp(prefix=f"cbt-{prefix}-"))
    os.chmod(work, 0o755)  # the web UI's user must reach the agent's socket
    world = World(
        f"{prefix}{os.getpid() % 10000}",
        work / "box",
        phones=1,
        webui_user="nobody",
        relay_name=relay_name,
    )
    try:
        if claimed:
            world.api.call(
                "setup.claim",
                code=world.api.call("setup.code")["code"],
                address="192.0.2.9",
                language="en",
                box_name="Home",
                admin_name="ana",
                passphrase=PASS,
                timezone="UTC",
            )
        world.api.call(
            "vpn.settings.set", endpoint=World.ENDPOINT, ipv4_subnet=SUBNET4, ipv6_subnet=SUBNET6
        )
        yield world
    finally:
        world.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
