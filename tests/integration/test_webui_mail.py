"""The web UI's mail and chat pages and its invitations, on a relay box running the real
agent and the box's own Postfix, Dovecot and OpenDKIM (cblab.relaylab).

The web UI connects to the agent as its own user (nobody), as when served, so the agent
acts for the member whose session it sends: what a member may see and do here is the
agent's decision, not the page's. The tests read the pages as a member would, then
check the result from outside: an app logging in over IMAP, the QR codes scanned.
"""

import html
import imaplib
import os
import re
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import cblab.relaylab
import webui.agent
from cblab.relaylab import RelayWorld, app_tls
from cblab.sandbox import BoxSandbox
from webui import create_app

from .conftest import ClientAsWebUI, csrf

DOMAIN = "box-w.test"
BASE = f"https://{DOMAIN}"
PASS = "correct horse battery staple 7"


@pytest.fixture(scope="module")
def world():
    # The agent's socket must be reachable by the web UI's user: a directory it may enter
    # (pytest's own temporary directories are root's alone).
    work = Path(tempfile.mkdtemp(prefix="cbt-webmail-"))
    os.chmod(work, 0o755)
    patch = pytest.MonkeyPatch()
    patch.setattr(cblab.relaylab, "BoxSandbox", partial(BoxSandbox, webui_user="nobody"))
    try:
        world = RelayWorld(work, {DOMAIN: "10.79.0.1"})
    finally:
        patch.undo()
    try:
        box = world.boxes[DOMAIN]
        code = box.api.call("setup.code")["code"]
        box.api.call(
            "setup.claim",
            code=code,
            address="192.0.2.9",
            language="en",
            box_name="Home",
            admin_name="ana",
            passphrase=PASS,
            timezone="UTC",
        )
        yield world
    finally:
        world.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


@pytest.fixture
def box(world):
    return world.boxes[DOMAIN]


@pytest.fixture
def app(box, monkeypatch):
    """A fresh web UI per test (its own form rate limit), speaking to the relay box."""
    monkeypatch.setattr(webui.agent, "Client", ClientAsWebUI)
    return create_app(box.agent.paths.socket, testing=True)


def text(answer) -> str:
    return answer.get_data(as_text=True)


def post(web, url, data, page):
    """Submit DATA to URL as the form on PAGE does (with that page's CSRF token)."""
    token = csrf(web.get(page, base_url=BASE))
    return web.post(url, data={**data, "csrf_token": token}, base_url=BASE)


def member(box, name, role="member"):
    box.api.call("users.add", name=name, role=role, passphrase=PASS)


def logged_in(app, name):
    web = app.test_client()
    answer = post(web, "/login", {"name": name, "passphrase": PASS}, "/login")
    assert answer.status_code == 302, text(answer)
    return web


def imap_login(world, box, address, password):
    with world.outside():
        imap = imaplib.IMAP4_SSL(box.address, ssl_context=app_tls())
    try:
        imap.login(address, password)
    finally:
        imap.logout()


def scan(svg: str, tmp_path) -> str:
    """What a phone's camera reads from the page's QR code: segno's SVG path (a run of
    dark modules per `h`) drawn as a bitmap, read by zbarimg."""
    size = int(re.search(r'<svg[^>]* viewBox="0 0 (\d+) \d+"', svg).group(1)) // 4  # scale(4)
    grid = [[0] * size for _ in range(size)]
    x = y = 0.0
    for cmd, a, b in re.findall(
        r"([MmHh])\s*(-?[\d.]+)(?:[ ,](-?[\d.]+))?", re.search(r' d="([^"]+)"', svg).group(1)
    ):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(float(a))):
                grid[int(y)][int(x) + i] = 1
            x += float(a)
    scale = 4
    rows = [
        " ".join(str(v) for v in row for _ in range(scale)) for row in grid for _ in range(scale)
    ]
    image = tmp_path / "qr.pbm"
    image.write_text(f"P1\n{size * scale} {size * scale}\n" + "\n".join(rows) + "\n")
    found = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sbinary", str(image)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    return found.stdout.decode().rstrip("\n")


def svg_in(page: str) -> str:
    return re.search(r"<svg.*?</svg>", page, re.S).group(0)


def test_a_member_adds_an_app_sees_its_password_once_and_the_app_logs_in(world, box, app, tmp_path):
    member(box, "maria")
    web = logged_in(app, "maria")
    home = text(web.get("/", base_url=BASE))
    assert 'href="/mail/"' in home and "Mail and chat" in home
    page = text(web.get("/mail/", base_url=BASE))
    assert "maria@box-w.test" in page and "No apps yet." in page
    assert "<h1>Mail and chat</h1>" in page and '<label for="label">' in page

    added = post(web, "/mail/apps", {"label": "Maria's phone, Delta Chat"}, "/mail/")
    assert added.status_code == 200  # shown in the answer itself: no redirect, no URL
    assert added.headers["Cache-Control"] == "no-store"
    shown = text(added)
    assert "shown only this once" in shown
    password = re.search(r'class="mono secret">([^<]+)<', shown).group(1)
    assert len(password) >= 16
    link = html.unescape(re.search(r'href="(dclogin:[^"]+)">Open in Delta Chat<', shown).group(1))
    assert urlsplit(link).path == "maria@box-w.test"
    assert parse_qs(urlsplit(link).query)["p"] == [password]
    assert scan(svg_in(shown), tmp_path) == link
    for server in ("Incoming mail (IMAP)", "Outgoing mail (SMTP)"):
        assert server in shown
    assert ">993<" in shown and ">465<" in shown and ">box-w.test<" in shown

    apps = box.api.call("mail.password.list", owner="maria")
    assert [a["label"] for a in apps] == ["Maria's phone, Delta Chat"]
    listing = text(web.get("/mail/", base_url=BASE))
    assert "Maria&#39;s phone, Delta Chat" in listing and password not in listing

    imap_login(world, box, "maria@box-w.test", password)  # the app gets in

    removed = post(web, f"/mail/apps/{apps[0]['id']}/remove", {}, "/mail/")
    assert removed.status_code == 302
    assert "No apps yet." in text(web.get("/mail/", base_url=BASE))
    assert box.api.call("mail.password.list", owner="maria") == []
    # Dovecot looks at its password files at most once a second: the app is out by then.
    deadline = time.monotonic() + 5
    with pytest.raises(imaplib.IMAP4.error):
        while time.monotonic() < deadline:
            imap_login(world, box, "maria@box-w.test", password)
            time.sleep(0.25)


def test_a_label_with_a_line_break_is_refused_and_nothing_added(box, app):
    member(box, "nils")
    web = logged_in(app, "nils")
    refused = post(web, "/mail/apps", {"label": "Nils's phone\nDelta Chat"}, "/mail/")
    assert refused.status_code == 400
    page = text(refused)
    assert 'id="label-note">Use 1 to 64 characters, without line breaks' in page
    assert 'aria-invalid="true"' in page and "shown only this once" not in page
    assert box.api.call("mail.password.list", owner="nils") == []


def test_a_member_sees_neither_the_settings_nor_anyone_elses_apps(box, app):
    member(box, "omar")
    theirs = box.api.call("mail.password.add", owner="ana", label="Ana's laptop")
    web = logged_in(app, "omar")
    page = text(web.get("/mail/", base_url=BASE))
    assert "omar@box-w.test" in page and "No apps yet." in page
    assert "Ana&#39;s laptop" not in page
    assert 'name="mail_domain"' not in page and "Records to publish in DNS" not in page
    refused = post(
        web, "/mail/settings", {"mail_enabled": "1", "mail_domain": "evil.test"}, "/mail/"
    )
    assert refused.status_code == 403
    assert box.api.call("mail.settings.get")["domain"] == DOMAIN
    # Someone else's app password cannot be removed by guessing its number.
    gone = post(web, f"/mail/apps/{theirs['app_password']['id']}/remove", {}, "/mail/")
    assert gone.status_code == 404
    assert any(a["label"] == "Ana's laptop" for a in box.api.call("mail.password.list"))
    assert "Users" not in text(web.get("/", base_url=BASE)).split("</nav>")[0]


def ticked(page: str, name: str) -> bool:
    box = re.search(
        rf'<input id="{name}" name="{name}" type="checkbox" value="1"\s*(checked)?', page
    )
    return bool(box.group(1))


def settings_form(box, **over) -> dict:
    """The settings form as the page fills it in, with OVER changed."""
    mail, chat = box.api.call("mail.settings.get"), box.api.call("chat.settings.get")
    data = {
        "mail_domain": mail["domain"],
        "mail_max_message_mib": str(mail["max_message_mib"]),
        "mail_quota_mib": str(mail["quota_mib"]),
        "mail_delete_fetched_after_days": str(mail["delete_fetched_after_days"]),
        "chat_archive_days": str(chat["archive_days"]),
        "chat_upload_mib": str(chat["upload_mib"]),
    }
    checks = {
        "mail_enabled": mail["enabled"],
        "mail_encrypted_only": mail["encrypted_only"],
        "chat_enabled": chat["enabled"],
    }
    for key, value in over.items():
        if key in checks:
            checks[key] = value
        else:
            data[key] = value
    return {**data, **{k: "1" for k, on in checks.items() if on}}


def test_an_admin_changes_the_settings_and_checks_the_dns(world, box, app):
    web = logged_in(app, "ana")
    page = text(web.get("/mail/", base_url=BASE))
    assert 'id="mail_domain" name="mail_domain" type="text" value="box-w.test"' in page
    assert ticked(page, "mail_enabled") and not ticked(page, "mail_encrypted_only")
    assert re.search(r'id="mail_quota_mib"[^>]*value="2048"[^>]*inputmode="numeric"', page)
    assert "Records to publish in DNS" in page and "In DNS now" not in page
    assert re.search(
        r'<span class="mono">box-w.test</span></td>\s*<td[^>]*><span class="mono">MX</span>'
        r'</td>\s*<td[^>]*><span class="mono">10 box-w.test.</span>',
        page,
    )
    before = box.api.call("config.history", limit=1)[0]["revision"]

    saved = post(web, "/mail/settings", settings_form(box, mail_encrypted_only=True), "/mail/")
    assert saved.status_code == 302 and saved.location.endswith("/mail/?saved=1")
    assert box.api.call("mail.settings.get")["encrypted_only"] is True
    page = text(web.get(saved.location, base_url=BASE))
    assert "Saved." in page and ticked(page, "mail_encrypted_only")
    latest = box.api.call("config.history", limit=1)[0]
    assert latest["revision"] == before + 1 and "encrypted_only" in latest["why"]  # only that

    saved = post(web, "/mail/settings", settings_form(box, mail_encrypted_only=False), "/mail/")
    assert saved.status_code == 302
    assert box.api.call("mail.settings.get")["encrypted_only"] is False

    refused = post(web, "/mail/settings", settings_form(box, mail_max_message_mib="500"), "/mail/")
    assert refused.status_code == 400
    page = text(refused)
    assert 'id="mail_max_message_mib-note">Enter a whole number from 1 to 100.' in page
    assert 'value="500"' in page  # what they typed, to correct it
    assert box.api.call("mail.settings.get")["max_message_mib"] == 25

    zone = world.zone.records  # what the world's DNS serves: one record never
    saved = dict(zone)  # published, one left over from an older setup
    try:
        zone.pop(("_dmarc.box-w.test", "TXT"))
        zone[("box-w.test", "TXT")] = ['"v=spf1 a:old-server.example -all"']
        checked = text(web.get("/mail/?check=1", base_url=BASE))
    finally:
        zone.clear()
        zone.update(saved)
    assert "In DNS now" in checked
    rows = re.findall(r"<tr>.*?</tr>", checked, re.S)
    dmarc = next(r for r in rows if "_dmarc.box-w.test" in r)
    assert re.search(r'class="state missing"[^>]*>Missing', dmarc)
    spf = next(r for r in rows if "v=spf1 mx -all" in r)
    assert re.search(r'class="state different"[^>]*>Different', spf)
    assert re.search(r'DNS says: <span class="mono">v=spf1 a:old-server.example -all</span>', spf)
    mx = re.search(
        r'<span class="mono">box-w.test</span></td>\s*<td[^>]*><span class="mono">MX</span>'
        r".*?</tr>",
        checked,
        re.S,
    )
    assert re.search(r'<td class="state published"[^>]*>Published', mx.group(0))
    assert "Could not check" not in checked


def test_dashboard_names_the_relays_health_checks(app):
    web = logged_in(app, "ana")
    page = text(web.get("/", base_url=BASE))
    for label in (
        "Mail signing (OpenDKIM)",
        "Encrypted-only filter",
        "Mailboxes (Dovecot)",
        "Mail server (Postfix)",
    ):
        assert label in page
    assert "mail · " not in page


def test_an_invitation_link_shows_who_is_invited_and_works_once(box, app, tmp_path):
    admin = logged_in(app, "ana")
    made = post(admin, "/users/invite", {"invite_name": "rosa", "invite_role": "member"}, "/users")
    assert made.status_code == 200
    page = text(made)
    assert "Invitation for <bdi>rosa</bdi>" in page and "The link works once, until" in page
    link = re.search(r'<a href="(https://box-w\.test/join/[^"]+)">', page).group(1)
    assert scan(svg_in(page), tmp_path) == link
    path = urlsplit(link).path

    guest = app.test_client()
    for _ in range(2):  # a link preview's GET spends nothing
        shown = guest.get(path, base_url=BASE)
        assert shown.status_code == 200
        assert "You are invited to join <bdi>Home</bdi> as <bdi>rosa</bdi>." in text(shown)
    assert "rosa" not in [u["name"] for u in box.api.call("users.list")]

    weak = post(guest, path, {"passphrase": "short", "confirm": "short", "language": "en"}, path)
    assert weak.status_code == 400 and "at least 12 characters" in text(weak)
    typo = post(guest, path, {"passphrase": PASS, "confirm": PASS + "!", "language": "en"}, path)
    assert typo.status_code == 400 and "The two passphrases are not the same." in text(typo)
    assert "rosa" not in [u["name"] for u in box.api.call("users.list")]

    joined = post(guest, path, {"passphrase": PASS, "confirm": PASS, "language": "es"}, path)
    assert joined.status_code == 302 and joined.location.endswith("/mail/")
    mail = text(guest.get("/mail/", base_url=BASE))
    assert "rosa@box-w.test" in mail and "(<bdi>rosa</bdi>)" in mail  # logged in, in her language
    assert '<html lang="es"' in mail
    rosa = next(u for u in box.api.call("users.list") if u["name"] == "rosa")
    assert rosa["role"] == "member" and rosa["language"] == "es"

    dead = app.test_client().get(path, base_url=BASE)
    assert dead.status_code == 404 and "already been used or has expired" in text(dead)
    assert app.test_client().get("/join/not-a-real-token", base_url=BASE).status_code == 404


def test_an_invitation_for_a_taken_name_is_refused_on_the_form(app):
    admin = logged_in(app, "ana")
    refused = post(
        admin, "/users/invite", {"invite_name": "ana", "invite_role": "member"}, "/users"
    )
    assert refused.status_code == 400
    assert 'id="invite_name-note">That name is already taken.' in text(refused)
    bad = post(
        admin, "/users/invite", {"invite_name": "Rosa Maria", "invite_role": "member"}, "/users"
    )
    assert bad.status_code == 400 and "Lower-case letters" in text(bad)


def test_forms_without_their_csrf_token_are_refused(box, app):
    member(box, "pia")
    web = logged_in(app, "pia")
    answer = web.post("/mail/apps", data={"label": "phone"}, base_url=BASE)
    assert answer.status_code == 400 and "expired" in text(answer)
    assert box.api.call("mail.password.list", owner="pia") == []

    token = box.api.call("users.invite", name="quinn")["token"]
    guest = app.test_client()
    guest.get(f"/join/{token}", base_url=BASE)
    answer = guest.post(f"/join/{token}", data={"passphrase": PASS, "confirm": PASS}, base_url=BASE)
    assert answer.status_code == 400 and "expired" in text(answer)
    assert box.api.call("users.invitation", token=token)["name"] == "quinn"  # still usable


def test_with_mail_off_members_are_told_and_admins_see_the_form(box, app):
    """Last: it turns mail off on the box."""
    admin = logged_in(app, "ana")
    off = post(admin, "/mail/settings", settings_form(box, mail_enabled=False), "/mail/")
    assert off.status_code == 302
    assert box.api.call("mail.settings.get")["enabled"] is False
    page = text(admin.get("/mail/", base_url=BASE))
    assert "Mail is not set up on this box yet." in page and 'name="mail_domain"' in page
    assert 'name="label"' not in page

    member(box, "ugo")
    web = logged_in(app, "ugo")
    page = text(web.get("/mail/", base_url=BASE))
    assert "Mail is not set up on this box yet." in page
    assert 'name="label"' not in page and 'name="mail_domain"' not in page
