"""The browser tier: Debian's headless Chromium, driven by Playwright, clicking through the
web UI served by gunicorn over TLS in front of the real agent in its network namespace.

Each test gets its own ``BrowserBox``: a sandbox.World (the box, a phone, the "internet"
host), the web UI on a free loopback port, and a fresh Chromium (fresh profile) that
trusts exactly that box's certificate, nothing more. A screenshot of every test's last
page lands in tests/artifacts/e2e/ (gitignored), pass or fail.

Certificates. The box's certificate is self-signed, so no CA can vouch for it; a member
checks its SHA-256 fingerprint against the one the box shows (`make demo` prints it).
The tests do the same, and do not simply switch certificate checks off:
 1. fetch the certificate the web UI actually serves (ssl.get_server_certificate) and
    check that its fingerprint equals ``status["webui"]["tls_sha256"]``, which comes
    from the agent over its local socket (the trusted channel);
 2. pin Chromium to that certificate's public key with
    ``--ignore-certificate-errors-spki-list=<base64 sha256 of the SPKI>``: Chromium then
    accepts this one key for the self-signed chain and still rejects any other
    certificate (a wrong pin gives net::ERR_CERT_AUTHORITY_INVALID; checked when this
    tier was written). So ``ignore_https_errors`` is not used at all.
Never let Playwright download a browser: it launches /usr/bin/chromium only.
"""

import base64
import hashlib
import itertools
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests/artifacts/e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASS = "three unrelated words"
_counter = itertools.count()


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the box and its phones run in network namespaces)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"needs {CHROMIUM} (Debian's chromium; `make test` installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright Python package (`make test` installs it)"
    for tool in ("ip", "wg", "wg-quick", "wireguard-go", "nft", "ping", "setpriv"):
        if not shutil.which(tool):
            return f"needs {tool} (`make test` installs it)"
    return None


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the web UI in headless Chromium (e2e tier)")


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.netns)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"BROWSER TIER NOT RUN: {reason}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spki_pin(cert_pem: str) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list wants: base64(sha256(SPKI))."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def _compile_translations() -> None:
    """The .po files are the source; the web UI reads .mo files: compile before serving."""
    translations = REPO / "webui/translations"
    stale = [
        po
        for po in translations.glob("*/LC_MESSAGES/messages.po")
        if not po.with_suffix(".mo").exists()
        or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if stale:
        done = subprocess.run(
            [str(REPO / ".venv/bin/pybabel"), "compile", "-d", str(translations)],
            capture_output=True,
            text=True,
        )
        if done.returncode:  # the good catalogues are still compiled; say which were not
            errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
            warnings.warn(f"pybabel compile failed: {errors or done.stderr[-500:]}", stacklevel=2)


class BrowserBox:
    """A box (World + served web UI) and a browser page pinned to its certificate."""

    def __init__(self, world, web, page, name: str):
        self.world, self.web, self.page, self.name = world, web, page, name
        self.api = world.api
        self.url = web.url
        self.shots: list[Path] = []

    def goto(self, path: str):
        return self.page.goto(self.url + path)

    def shot(self, label: str = "", full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}{'-' + label if label else ''}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.shots.append(path)
        return path

    def path(self) -> str:
        return self.page.url.removeprefix(self.url)

    def html_attrs(self) -> tuple[str, str]:
        html = self.page.locator("html")
        return html.get_attribute("dir"), html.get_attribute("lang")

    def claim(self, box_name: str = "Home", admin: str = "ana") -> None:
        """Claim the box through its page, as its new owner would; ends on the dashboard."""
        page = self.page
        self.goto("/setup")
        page.fill("#code", self.api.call("setup.code")["code"])
        page.select_option("#language", "en")
        page.fill("#box_name", box_name)
        page.fill("#admin_name", admin)
        page.fill("#passphrase", PASS)
        page.select_option("#timezone", "Europe/Lisbon")
        page.fill("#endpoint_host", self.world.ENDPOINT["host"])
        page.fill("#endpoint_port", str(self.world.ENDPOINT["port"]))
        page.get_by_role("button", name="Claim this box").click()
        page.wait_for_load_state()
        assert self.path() == "/", (self.path(), page.content()[:2000])

    def login(self, name: str = "ana", passphrase: str = PASS) -> None:
        page = self.page
        self.goto("/login")
        page.fill("#name", name)
        page.fill("#passphrase", passphrase)
        page.locator("main").get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    def logout(self) -> None:
        self.page.get_by_role("button", name=re.compile(r"^Log out")).click()
        self.page.wait_for_load_state()

    def vpn_address(self) -> str:
        """The box's own address in the VPN: the first host of its IPv4 subnet."""
        import ipaddress

        subnet = self.api.call("status")["vpn"]["ipv4_subnet"]
        return str(next(ipaddress.ip_network(subnet).hosts()))

    def phone_ifname(self, i: int) -> str:
        name = f"cbe{self.world.prefix[3:]}p{i}"
        assert len(name) <= 15, name  # Linux interface names; unique on the machine
        return name


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    _compile_translations()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def box(request, playwright_driver):
    from appliance.tls import fingerprint
    from cblab.sandbox import WebUI, World

    tag = f"{os.getpid() % 10000}{next(_counter)}"
    root = Path(tempfile.mkdtemp(prefix="cbe-"))
    os.chmod(root, 0o755)  # the web UI's own user (nobody) must reach the agent's socket
    world = web = browser = None
    try:
        world = World(f"cbe{tag}", root, phones=1, webui_user="nobody")
        web = WebUI(world.box, _free_port())
        web.wait_ready()
        served = ssl.get_server_certificate(("127.0.0.1", web.port))
        expected = world.api.call("status")["webui"]["tls_sha256"]
        assert fingerprint(served.encode()) == expected, (
            "the web UI serves a certificate other than the one the box reports"
        )
        browser = playwright_driver.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_pin(served)}"],
        )
        # launch() gives Chromium a fresh temporary profile (--user-data-dir) of its own.
        context = browser.new_context(
            viewport={"width": 1024, "height": 768}, locale="en-GB", accept_downloads=True
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        bb = BrowserBox(world, web, page, request.node.name)
        bb.fingerprint = expected
        yield bb
        try:
            bb.shot()  # the page each test ended on, pass or fail
        except Exception as err:  # a screenshot must not hide the test's own outcome
            print(f"screenshot failed: {err}")
    finally:
        if browser:
            browser.close()
        if web:
            web.stop()
        if world:
            world.close()
        subprocess.run(["rm", "-rf", str(root)])
