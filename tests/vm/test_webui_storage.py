"""The storage page in the booted guest, driven over HTTPS through the forwarded port as a
household's browser would: the volume shown, locked and unlocked through its forms, the
dashboard's unlock banner. The guest's kernel has device-mapper; this machine has not.

tests/vm/test_storage.py, run before in the same VM, leaves a volume whose passphrase is
PASSPHRASE. Run alone, this file makes one itself through the page's Set up form.
"""

import html
import http.client
import json
import re
import ssl
import time
from urllib.parse import urlencode

import pytest

from .guest import wait_for

pytestmark = pytest.mark.vm

PASSPHRASE = "our house, our keys 42"  # the storage's, as tests/vm/test_storage.py made it
ADMIN, ADMIN_PASS = "keeper", "a box that keeps our own 7"
SLOW = 900  # seconds a storage form may take under TCG (argon2id, mkfs, services)


class Browser:
    """Just enough of a browser: one cookie jar, no redirects followed unasked."""

    def __init__(self, port: int, context: ssl.SSLContext):
        self.port, self.context, self.cookies = port, context, {}

    def request(self, method: str, path: str, form: dict | None = None):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.context, timeout=SLOW
        )
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
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

    def get(self, path: str):
        return self.request("GET", path)

    def submit(self, page: str, action: str, form: dict):
        """Fill in the form at ACTION on PAGE (with its CSRF token) and send it; a redirect
        is followed, as a browser does."""
        _, text = self.get(page)
        token = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
        answer, text = self.request("POST", action, {**form, "csrf_token": token})
        if answer.status in (302, 303):
            location = answer.headers["Location"]
            return self.get(location[location.index("/", 8) :] if "://" in location else location)
        return answer, text


def cli(vm, *args, timeout=600):
    answer = vm.run(["commonsbox", *args, "--json"], timeout=timeout)
    assert answer.rc == 0, answer.stderr
    return json.loads(answer.stdout)


@pytest.fixture(scope="module")
def web(vm, tmp_path_factory):
    """A manager logged in to the guest's web UI (the box claimed through it if need be)."""
    vm.wait_active("commonsbox-webui")  # the test before may have rebooted the guest
    cert = tmp_path_factory.mktemp("webui") / "webui.crt"
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


def set_up_through_the_page(vm, web, tmp_path_factory):
    """No volume yet (this file run alone): a fresh USB disk, set up with the page's form."""
    image = tmp_path_factory.mktemp("usb") / "webdisk.img"
    with open(image, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    vm.plug_usb_disk(image, "webdisk")
    disk = wait_for(
        lambda: next(
            (d for d in cli(vm, "storage", "disks") if d["usb"] and d["contents"] == "empty"), None
        ),
        timeout=120,
    )
    _, page = web.get("/storage/")
    assert f"Set up <bdi>{disk['confirm_name']}</bdi> as the storage" in page
    setup = f"/storage/setup/{disk['name']}"
    _, form = web.get(setup)
    assert "Everything on this disk is erased" in form
    assert f"type its name: {disk['confirm_name']}" in form
    data = {"passphrase": PASSPHRASE, "passphrase2": PASSPHRASE, "cipher": "aes-xts"}
    answer, said = web.submit(setup, setup, {**data, "confirm": disk["name"] + "-please"})
    assert answer.status == 400 and "Type the disk's name exactly" in said
    assert cli(vm, "storage", "status")["volume"] is None  # nothing happened
    t0 = time.monotonic()
    answer, shown = web.submit(setup, setup, {**data, "confirm": disk["confirm_name"]})
    print(f"set up through the page (argon2id, under TCG) in {time.monotonic() - t0:.1f} s")
    assert answer.status == 200, shown
    assert answer.headers["Cache-Control"] == "no-store"
    assert "shown only this once" in shown
    key = re.search(r"\b(?:[0-9A-Z]{5}-){7}[0-9A-Z]{5}\b", shown).group(0)
    assert "recovery key" in cli(vm, "storage", "status")["volume"]["key_slots"]
    assert key not in web.get("/storage/")[1]  # once only


def test_the_storage_page_shows_the_volume(vm, web, tmp_path_factory):
    if cli(vm, "storage", "status")["volume"] is None:
        set_up_through_the_page(vm, web, tmp_path_factory)
    volume = wait_for(
        lambda: (v := cli(vm, "storage", "status")["volume"]) and v["present"] and v, timeout=120
    )
    answer, page = web.get("/storage/")
    assert answer.status == 200
    assert "Encrypted storage" in page and volume["disk"] in page
    assert volume["cipher"] in page and "the household's passphrase" in page
    assert "the recovery key" in page
    if volume["unlocked"]:
        assert "Unlocked: mail and chat can use it." in page and "Lock the storage" in page
    else:
        assert "Unlock the storage" in page
    disk = next(d for d in cli(vm, "storage", "disks") if d["is_storage"])
    assert "This is the household's encrypted storage." in page and disk["name"] in page


def test_lock_and_unlock_through_the_page(vm, web):
    if not cli(vm, "storage", "status")["volume"]["unlocked"]:  # left locked before: open it
        answer, page = web.submit("/storage/", "/storage/unlock", {"key": PASSPHRASE})
        assert answer.status == 200 and "The storage is unlocked." in page, page

    answer, page = web.submit("/storage/", "/storage/lock", {})
    assert answer.status == 200 and "The storage is locked." in page, page
    volume = cli(vm, "storage", "status")["volume"]
    assert not volume["unlocked"] and not volume["mounted"]
    # After a restart (or this), unlocking is the first thing on the page...
    assert page.index('id="unlock-title"') < page.index('id="state-title"')
    # ...and the dashboard sends the household there.
    _, home = web.get("/")
    assert "The storage is locked: mail and chat wait until it is unlocked." in home
    assert 'href="/storage/#unlock"' in home and "Encrypted, locked" in home
    # Mail's settings are on the locked volume: the page says so, not "mail is off".
    answer, page = web.get("/mail/")
    assert "The storage is locked: unlock it on the Storage page first" in page, page
    assert "Mail is not set up" not in page

    answer, page = web.submit("/storage/", "/storage/unlock", {"key": "not our passphrase at all"})
    assert answer.status == 400
    assert "That passphrase or recovery key does not open the storage." in page
    assert not cli(vm, "storage", "status")["volume"]["unlocked"]

    answer, page = web.submit("/storage/", "/storage/unlock", {"key": PASSPHRASE})
    assert answer.status == 200 and "The storage is unlocked." in page, page
    assert "Unlocked: mail and chat can use it." in page
    volume = cli(vm, "storage", "status")["volume"]
    assert volume["unlocked"] and volume["mounted"]  # left unlocked, as found
    _, home = web.get("/")
    assert "The storage is locked" not in home and "Encrypted, unlocked" in home
