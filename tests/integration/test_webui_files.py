"""The web UI's Files page, against the real agent in its namespace running the box's own
root (cblab.boxroot), so the share is the box's OpenSSH: a manager turns the share on
from the page, a member reads how to connect and gets a files password once, and that
password works with Debian's sftp client from a phone connected through WireGuard.

The web UI connects to the agent as its own user (nobody), as when served: what a member
may do here is the agent's decision as well as the page's.
"""

import re
import subprocess

import pytest

from appliance.errors import Forbidden

from .conftest import BASE, PASS, ClientAsWebUI, household_box, logged_in, post, text
from .test_files import BOX_VPN_IP, sftp

FILES = "/var/lib/commonsbox/private/files"


@pytest.fixture(scope="module")
def box():
    with household_box("cbu", "files.test") as world:
        world.api.call("storage.settings.set", allow_unencrypted=True)  # no disks here
        world.api.call("users.add", name="maria", role="member", passphrase=PASS)
        device = world.api.call("vpn.device.add", name="maria's laptop")["device"]
        world.phone(0, f"{world.prefix}p0", device["id"])
        yield world


def share_on(box) -> bool:
    return box.api.call("files.connection", owner="maria")["enabled"]


def password_on(page) -> str:
    found = re.search(r'<dd class="mono secret">([^<]+)</dd>', text(page))
    return found.group(1) if found else ""


def test_a_member_sees_that_the_share_is_off_and_gets_no_password(app, box):
    web = logged_in(app, "maria")
    home = text(web.get("/", base_url=BASE))
    assert 'href="/files/"' in home  # every member's menu
    page = web.get("/files/", base_url=BASE)
    body = text(page)
    assert page.status_code == 200 and "<h1>Files</h1>" in body
    off = "The file share is off. A manager of the box must turn it on first."
    assert off in " ".join(body.split())
    assert "New files password" not in body and "Turn the file share on" not in body
    # a form sent anyway (a page left open while a manager turned the share off)
    answer = post(web, "/files/password", {}, "/")
    assert answer.status_code == 400
    assert "The file share is off: a manager of the box turns it on first." in text(answer)
    assert not password_on(answer)


def test_members_may_not_turn_the_share_on_or_off(app, box):
    web = logged_in(app, "maria")
    answer = post(web, "/files/settings", {"enabled": "1"}, "/files/")
    assert answer.status_code == 403 and "You are not allowed to do that." in text(answer)
    assert not share_on(box)
    # and the agent itself refuses a member's session, whatever a page would do
    session = ClientAsWebUI(
        box.box.paths.socket,
        session=box.api.call("auth.login", name="maria", passphrase=PASS, address="192.0.2.7")[
            "session"
        ],
    )
    with pytest.raises(Forbidden):
        session.call("files.settings.set", enabled=True)
    session.close()
    assert not share_on(box)


def test_forms_without_the_pages_token_are_refused(app, box):
    web = logged_in(app, "ana")
    web.get("/files/", base_url=BASE)
    for data in ({"enabled": "1"}, {"enabled": "1", "csrf_token": "forged"}):
        answer = web.post("/files/settings", data=data, base_url=BASE)
        assert answer.status_code == 400 and "This form has expired." in text(answer)
    assert not share_on(box)
    maria = logged_in(app, "maria")
    answer = maria.post("/files/password", data={}, base_url=BASE)
    assert answer.status_code == 400 and not password_on(answer)


def test_a_manager_turns_the_share_on_and_a_member_connects_with_the_password_shown_once(
    app, box, tmp_path
):
    ana = logged_in(app, "ana")
    page = text(ana.get("/files/", base_url=BASE))
    assert "The folders live on the box's encrypted storage" in page
    on = post(ana, "/files/settings", {"enabled": "1"}, "/files/")
    assert on.status_code == 302 and on.location.endswith("/files/?done=on")
    page = text(ana.get(on.location, base_url=BASE))
    assert '<p role="status">The file share is on.</p>' in page
    assert "Turn the file share off" in page
    assert share_on(box)
    latest = box.api.call("config.history", limit=1)[0]
    assert latest["who"].startswith("ana") and "file share on" in latest["why"]

    maria = logged_in(app, "maria")
    page = maria.get("/files/", base_url=BASE)
    body = text(page)
    key = box.api.call("files.connection", owner="maria")["host_key"]
    assert page.headers["Cache-Control"] == "no-store"
    assert f"sftp://maria@{BOX_VPN_IP}/" in body and BOX_VPN_IP in body and key in body
    assert "your app will ask you to trust the box's key" in body
    assert "connected to the box's VPN" in body
    assert "Material Files" in body and "FE File Explorer" in body and "WinSCP" in body
    assert "You have no files password yet" in body
    assert "Turn the file share" not in body  # the managers' form is not a member's

    made = post(maria, "/files/password", {}, "/files/")
    password = password_on(made)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    assert len(password) == 24
    assert "it is shown only this once" in text(made) and key in text(made)
    assert "previous files password" not in text(made)  # she had none
    again = maria.get("/files/", base_url=BASE)
    assert password not in text(again) and not password_on(again)
    assert "You have a files password." in text(again)

    # the password works: Debian's sftp, from Maria's laptop through WireGuard
    note = tmp_path / "note.txt"
    note.write_text("from the laptop\n")
    done = sftp(box, tmp_path, "maria", password, f"put {note}\nls\n")
    assert done.returncode == 0, done.stderr
    assert box.box_root.system().path(f"{FILES}/maria/note.txt").read_text() == "from the laptop\n"
    listed = subprocess.run(
        ["ssh-keygen", "-lf", tmp_path / "known_hosts"], text=True, capture_output=True, check=True
    ).stdout
    assert key in listed  # the key the page told her to compare is the one her app met

    # a new one: the page says the old one stops working, and it does
    newer = post(maria, "/files/password", {}, "/files/")
    assert "Your previous files password no longer works" in text(newer)
    assert password_on(newer) not in ("", password)
    done = sftp(box, tmp_path, "maria", password, "ls\n")
    assert done.returncode != 0 and "Permission denied" in done.stderr
    done = sftp(box, tmp_path, "maria", password_on(newer), "ls\n")
    assert done.returncode == 0 and "note.txt" in done.stdout, done.stderr


def test_while_the_storage_is_not_ready_the_page_says_the_share_is_closed(app, box):
    api = box.api
    if not share_on(box):
        api.call("files.settings.set", enabled=True)
    api.call("storage.settings.set", allow_unencrypted=False)  # no storage at all now
    try:
        api.call("users.add", name="tomas", role="member", passphrase=PASS)
        tomas = logged_in(app, "tomas")
        page = text(tomas.get("/files/", base_url=BASE))
        assert "The share is closed for now: the box's storage is locked or not set up yet." in page
        answer = post(tomas, "/files/password", {}, "/files/")
        assert answer.status_code == 400 and not password_on(answer)
        assert "Your files account is not ready yet: the box's storage must be unlocked" in text(
            answer
        )
    finally:
        api.call("storage.settings.set", allow_unencrypted=True)
    page = text(logged_in(app, "tomas").get("/files/", base_url=BASE))
    assert "The share is closed for now" not in page and "sftp://tomas@" in page


def test_the_page_says_the_share_is_off_when_a_manager_turns_it_off(app, box, tmp_path):
    if not share_on(box):
        box.api.call("files.settings.set", enabled=True)
    ana = logged_in(app, "ana")
    off = post(ana, "/files/settings", {"enabled": "0"}, "/files/")
    assert off.status_code == 302 and off.location.endswith("/files/?done=off")
    page = text(ana.get(off.location, base_url=BASE))
    assert '<p role="status">The file share is off.</p>' in page
    assert not share_on(box)

    maria = logged_in(app, "maria")
    body = " ".join(text(maria.get("/files/", base_url=BASE)).split())
    assert "The file share is off. A manager of the box must turn it on first." in body
    assert "sftp://" not in body and "New files password" not in body
    password = box.api.call("files.connection", owner="maria")
    assert password["has_password"]  # her password is kept for when the share is back...
    done = sftp(box, tmp_path, "maria", "whatever", "ls\n")
    assert done.returncode != 0 and "refused" in done.stderr, done.stderr  # ...but nothing answers


def test_a_manager_chooses_what_becomes_of_a_departed_members_folder(app, box):
    ana = logged_in(app, "ana")
    page = text(ana.get("/files/", base_url=BASE))
    assert "When someone leaves the household" in page
    assert re.search(r'value="archive" checked', page)  # kept, by default
    saved = post(ana, "/files/departed", {"departed": "delete"}, "/files/")
    assert saved.status_code == 302 and saved.location.endswith("/files/?done=saved")
    page = text(ana.get(saved.location, base_url=BASE))
    assert '<p role="status">Saved.</p>' in page and re.search(r'value="delete" checked', page)
    assert box.api.call("files.connection", owner="maria")["departed"] == "delete"
    wrong = post(ana, "/files/departed", {"departed": "burn"}, "/files/")
    assert wrong.status_code == 400
    maria = logged_in(app, "maria")
    assert "When someone leaves the household" not in text(maria.get("/files/", base_url=BASE))
    refused = post(maria, "/files/departed", {"departed": "archive"}, "/files/")
    assert refused.status_code == 403
    post(ana, "/files/departed", {"departed": "archive"}, "/files/")
    assert box.api.call("files.connection", owner="maria")["departed"] == "archive"
