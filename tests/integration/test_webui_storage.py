"""The web UI's storage page and the dashboard's disk and temperature, against the real
agent in its namespace, running the box's own root (cblab.boxroot).

A box in a namespace has no disks of its own and this machine has no device-mapper:
what is tested here is what a manager sees without a disk (the choice to keep data
unencrypted, the agent's answers to forms that need one) and that members may not
reach any of it. Formatting, locking and unlocking for real: tests/vm/test_webui_storage.py.
"""

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from appliance.errors import Forbidden
from cblab.sandbox import World

from .conftest import BASE, PASS, ClientAsWebUI, csrf, logged_in, post, text


@pytest.fixture(scope="module")
def box():
    # The web UI's user must reach the agent's socket: a directory it may enter.
    work = Path(tempfile.mkdtemp(prefix="cbt-webstorage-"))
    os.chmod(work, 0o755)
    world = World(
        f"cbs{os.getpid() % 10000}",
        work / "box",
        phones=0,
        webui_user="nobody",
        relay_name="box.test",
    )
    try:
        code = world.api.call("setup.code")["code"]
        world.api.call(
            "setup.claim",
            code=code,
            address="192.0.2.9",
            language="en",
            box_name="Home",
            admin_name="ana",
            passphrase=PASS,
            timezone="UTC",
        )
        world.api.call("users.add", name="maria", role="member", passphrase=PASS)
        yield world
    finally:
        world.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def test_a_manager_sees_the_storage_page_with_no_disks(app):
    web = logged_in(app, "ana")
    home = text(web.get("/", base_url=BASE))
    assert 'href="/storage/"' in home  # in the menu and beside the storage's state
    page = web.get("/storage/", base_url=BASE)
    body = text(page)
    assert page.status_code == 200 and "<h1>Storage</h1>" in body
    assert "This box has no encrypted storage yet." in body
    assert "Mail and chat do not run until a disk is set up" in body
    assert "No disks are plugged in. Plug a USB disk into the box" in body
    assert "Unlock the storage" not in body and "Lock the storage" not in body
    assert page.headers["Cache-Control"] == "no-store"


def test_members_may_not_see_or_use_it(app, box):
    web = logged_in(app, "maria")
    home = web.get("/", base_url=BASE)
    assert home.status_code == 200 and "/storage/" not in text(home)
    assert "no sensor" in text(home)  # the box's temperature is everyone's to see
    page = web.get("/storage/", base_url=BASE)
    assert page.status_code == 403 and "You are not allowed to do that." in text(page)
    token = csrf(home)
    for url, data in (
        ("/storage/settings", {"allow_unencrypted": "1"}),
        ("/storage/unlock", {"key": PASS}),
        ("/storage/lock", {}),
        ("/storage/setup/sda", {"confirm": "x", "passphrase": PASS, "passphrase2": PASS}),
    ):
        answer = web.post(url, data={**data, "csrf_token": token}, base_url=BASE)
        assert answer.status_code == 403, url
    assert box.api.call("storage.status")["allow_unencrypted"] is False
    # and the agent itself refuses a member's session, whatever a page would do
    session = ClientAsWebUI(
        box.box.paths.socket,
        session=box.api.call("auth.login", name="maria", passphrase=PASS, address="192.0.2.7")[
            "session"
        ],
    )
    with pytest.raises(Forbidden):
        session.call("storage.status")
    session.close()


def test_the_unencrypted_choice_round_trips(app, box):
    web = logged_in(app, "ana")
    page = text(web.get("/storage/", base_url=BASE))
    assert "whoever takes the box, or just its card, can read them" in page
    assert not re.search(r'id="allow_unencrypted"[^>]*checked', page)
    on = post(web, "/storage/settings", {"allow_unencrypted": "1"}, "/storage/")
    assert on.status_code == 302 and on.location.endswith("/storage/?done=saved")
    page = text(web.get(on.location, base_url=BASE))
    assert '<p role="status">Saved.</p>' in page
    assert re.search(r'id="allow_unencrypted"[^>]*checked', page)
    assert "The household chose to keep its data unencrypted" in page
    assert box.api.call("storage.status")["allow_unencrypted"] is True
    latest = box.api.call("config.history", limit=1)[0]
    assert latest["who"].startswith("ana") and "unencrypted" in latest["why"]
    assert "Not encrypted, as the household chose" in text(web.get("/", base_url=BASE))

    off = post(web, "/storage/settings", {}, "/storage/")  # the box unticked
    assert off.status_code == 302
    assert box.api.call("storage.status")["allow_unencrypted"] is False
    assert "No encrypted storage yet" in text(web.get("/", base_url=BASE))


def test_setting_up_a_disk_that_is_not_there_shows_the_agents_answer(app, box):
    web = logged_in(app, "ana")
    page = web.get("/storage/setup/sdz", base_url=BASE)
    assert page.status_code == 404 and "That disk is not plugged in any more." in text(page)
    data = {"passphrase": PASS, "passphrase2": PASS, "cipher": "aes-xts", "confirm": "sdz"}
    answer = post(web, "/storage/setup/sdz", data, "/storage/")
    body = text(answer)
    assert answer.status_code == 400
    assert "That disk is not plugged in any more. Plug it in and reload this page." in body
    assert "recovery key" not in body.lower().split("</header>")[1]
    assert box.api.call("storage.status")["volume"] is None


def test_forms_that_need_a_volume_say_there_is_none(app, box):
    web = logged_in(app, "ana")
    none_yet = "This box has no encrypted storage yet: set up a disk first."
    unlock = post(web, "/storage/unlock", {"key": "our house, our keys 42"}, "/storage/")
    assert unlock.status_code == 400
    body = text(unlock)
    assert none_yet in body and 'id="unlock-title"' in body  # said where it was asked
    for url, data in (
        ("/storage/passphrase", {"old": PASS, "new": PASS + " x", "new2": PASS + " x"}),
        ("/storage/recovery-key", {"rk_passphrase": PASS}),
        ("/storage/usb-key/remove", {"usb_remove_passphrase": PASS}),
    ):
        answer = post(web, url, data, "/storage/")
        assert answer.status_code == 400 and none_yet in text(answer), url


def test_storage_forms_need_their_csrf_token(app, box):
    web = logged_in(app, "ana")
    web.get("/storage/", base_url=BASE)
    for url, data in (
        ("/storage/settings", {"allow_unencrypted": "1"}),
        ("/storage/unlock", {"key": PASS}),
        ("/storage/setup/sdz", {"confirm": "sdz", "passphrase": PASS, "passphrase2": PASS}),
    ):
        answer = web.post(url, data=data, base_url=BASE)
        assert answer.status_code == 400 and "This form has expired" in text(answer), url
        wrong = web.post(url, data={**data, "csrf_token": "not-the-token"}, base_url=BASE)
        assert wrong.status_code == 400, url
    assert box.api.call("storage.status")["allow_unencrypted"] is False


def test_the_dashboard_shows_temperature_storage_and_free_space(app, box):
    web = logged_in(app, "ana")
    home = text(web.get("/", base_url=BASE))
    hardware = box.api.call("hardware.status")
    assert hardware["devices"]["temperature"]["state"] == "absent"  # no I2C bus here
    assert re.search(r"<dt>Temperature</dt><dd>\s*no sensor", home)
    assert "No encrypted storage yet" in home
    assert "The storage is locked" not in home  # the banner is for a locked volume only
    system = box.api.call("status")["system"]
    free = re.search(
        r"<dt>Free space</dt><dd><bdi>([\d.]+) (GB|MB|kB|B)</bdi> / "
        r"<bdi>([\d.]+) (GB|MB|kB|B)</bdi>",
        home,
    )
    assert free, home
    factor = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    shown_free, shown_total = (float(free[1]) * factor[free[2]], float(free[3]) * factor[free[4]])
    assert abs(shown_total - system["disk_total"]) < 0.06e9
    assert abs(shown_free - system["disk_free"]) < 0.2e9  # this machine writes meanwhile
    low = system["disk_free"] < 0.1 * system["disk_total"]
    assert ("Less than a tenth of the space is free" in home) == low
