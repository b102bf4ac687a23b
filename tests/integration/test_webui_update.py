"""The web UI's update page and the dashboard's update lines, against the real agent in its
namespace.

A box in a namespace cannot run RAUC or switch slots, so what is tested here is what a
manager sees: a box built without an update key; the update record as the health gate
writes it (a version waiting for a restart, one kept, one rolled back, one that did not
start); the changes a real fallback undid (the next version's agent, then this one's, as
in test_update_state.py); each refusal of a feed, given by the agent from a real HTTPS
server in the box's namespace; and that members and forged forms are refused.
"""

import io
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import imagesign
from appliance.update import feed, record
from cbimage import publish
from cblab.sandbox import World

from .conftest import BASE, PASS, ClientAsWebUI, csrf, logged_in, post, text
from .test_update_fetch import make_ca
from .test_update_state import NEXT, TODAY, household, run_as  # noqa: F401 (a fixture)

NOW = datetime.now(UTC)
BOARD = "qemu-amd64"
RUNNING = (NOW - timedelta(days=35)).strftime("%Y.%m.%d.1")
NEWER = (NOW - timedelta(days=2)).strftime("%Y.%m.%d.1")
OLDER = (NOW - timedelta(days=60)).strftime("%Y.%m.%d.1")
PORT = 8443
FEEDS = f"https://127.0.0.1:{PORT}"
NO_UPDATES = "This box takes no updates: it was built without an update key"

# A static HTTPS server for the feeds, run in the box's namespace (where the agent fetches).
SERVER = """
import functools, http.server, ssl, sys
folder, cert, key, port = sys.argv[1:5]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"""


@pytest.fixture(scope="module")
def box():
    """A claimed box (ana, admin; maria, member) whose agent trusts the feeds' CA, as a
    box trusts the public ones, and the feeds' server beside it."""
    work = Path(tempfile.mkdtemp(prefix="cbt-webupdate-"))
    os.chmod(work, 0o755)  # the web UI's user must reach the agent's socket
    ca, cert, key = make_ca(work, "feeds")
    (work / "ca.pem").write_text(ca)
    (work / "feeds").mkdir()
    world = World(f"cbu{os.getpid() % 10000}", work / "box", phones=0, webui_user="nobody")
    server = None
    try:
        world.api.close()
        world.box.stop()
        world.box.env = {"SSL_CERT_FILE": str(work / "ca.pem")}
        world.box.start()
        world.api = world.box.client()
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
        server = world.box_ns.popen(
            [sys.executable, "-c", SERVER, str(work / "feeds"), str(cert), str(key), str(PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        world.feeds = work / "feeds"
        world.signing_key = work / "update.key"
        world.public_key = imagesign.keygen(world.signing_key, work / "update.pub")
        for _ in range(100):  # until it listens
            if (
                world.box_ns.run(
                    ["curl", "-s", "-o", "/dev/null", "-k", FEEDS], check=False
                ).returncode
                == 0
            ):
                break
            time.sleep(0.05)
        yield world
    finally:
        if server:
            server.terminate()
            server.wait()
        world.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def made(box, relative: str) -> Path:
    return box.box.paths.root / relative


@pytest.fixture
def updates(box, monkeypatch):
    """The box's update record, written here as the gate writes it (record.py), in the
    box's own root; what a test gave the box of a release is taken away after it."""
    monkeypatch.setattr(record, "DIR", box.box.paths.state_dir / "update")
    monkeypatch.setattr(record, "RELEASE", made(box, "usr/lib/commonsbox/release.json"))
    yield record
    subprocess.run(["rm", "-rf", str(record.DIR)], check=True)
    for path in ("usr/lib/commonsbox", "etc/rauc"):
        subprocess.run(["rm", "-rf", str(made(box, path))], check=True)


def release(box, version: str = RUNNING, feed_key: bool = True) -> None:
    """BOX built as a release VERSION with the update key (and the feed's key), as the
    image builder makes one: what a box in a namespace has of the card's root."""
    lib = made(box, "usr/lib/commonsbox")
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "release.json").write_text(f'{{"board": "{BOARD}", "version": "{version}"}}\n')
    if feed_key:
        (lib / "update-feed.pub").write_text(box.public_key + "\n")
    made(box, "etc/rauc").mkdir(parents=True, exist_ok=True)
    made(box, "etc/rauc/keyring.pem").write_text("the update certificate\n")


def flat(answer) -> str:
    return " ".join(text(answer).split())


def main(answer) -> str:
    """The page's own part (the header has forms of its own: language, log out)."""
    return flat(answer).split("<main>", 1)[1]


def test_a_box_built_without_an_update_key_says_it_takes_none_and_offers_nothing(app, box, updates):
    ana = logged_in(app, "ana")
    home = flat(ana.get("/", base_url=BASE))
    assert '<a href="/update/">Updates</a>' in home  # in the menu
    assert "Takes no updates: it was built without an update key." in home
    page = ana.get("/update/", base_url=BASE)
    body = main(page)
    assert page.status_code == 200 and "<h1>Updates</h1>" in body
    assert NO_UPDATES in body
    assert "Unknown: this system was not built as a release." in body
    assert "<form" not in body and "Go back to" not in body
    assert "No update has been installed on this box yet." in body


def test_the_page_says_what_came_of_each_update_and_what_waits_for_a_restart(app, box, updates):
    release(box, RUNNING)
    day = 86400.0
    start = time.time() - 40 * day
    kept = {"slot": "B", "version": RUNNING, "from": OLDER}
    updates.finished(kept, "committed", [], now=start)
    tried = {"slot": "A", "version": NEWER, "from": RUNNING}
    updates.finished(
        tried,
        "rolled back",
        ["health check failing: vpn: interface", "not running: postfix.service"],
        now=start + day,
    )
    updates.finished(
        {**tried, "version": "2026.11.30.2"},
        "fell back",
        ["the new version did not start"],
        now=start + 2 * day,
    )
    updates.checked({"url": "https://updates.example.org/commonsbox/", "found": NEWER})
    updates.armed("A", NEWER, {"checks": [], "units": []})
    box.api.call("reconcile")  # the dashboard's checks read the record afresh

    ana = logged_in(app, "ana")
    body = main(ana.get("/update/", base_url=BASE))
    assert NO_UPDATES not in body
    assert f'<dd><span class="ltr">{RUNNING}</span>' in body
    assert (
        f"Version {NEWER} is installed and waits for a restart: the box tries it when it "
        "next restarts."
    ) in body
    assert (
        f"Version 2026.11.30.2 did not start: the box went back to version {RUNNING} by itself."
    ) in body
    assert (
        f"Version {NEWER} was tried and not kept: the box went back to version {RUNNING}." in body
    )
    assert "What did not work:" in body
    assert "<li>A check failed: VPN interface</li>" in body
    assert '<li>Did not run again: <span class="ltr">postfix.service</span></li>' in body
    assert f"From version {OLDER} to {RUNNING}: kept." in body
    assert "health check failing" not in body and "not running:" not in body  # no raw English
    assert "Last check of https://updates.example.org/commonsbox/" in re.sub("<[^>]+>", "", body)
    assert f"it offered version {NEWER}." in body
    assert 'action="/update/feed"' in body and 'action="/update/stick"' in body
    # The other slot holds the version installed, not the one before: nothing to go back to.
    assert 'href="/update/rollback"' not in body and "Go back to" not in body

    home = flat(ana.get("/", base_url=BASE))
    assert f'<span class="ltr">{RUNNING}</span>' in home and 'href="/update/"' in home
    assert f"Version {NEWER} is installed and waits for a restart" in home
    # the capability's failing check, in words
    assert "Last update" in home
    assert (
        "Version 2026.11.30.2 did not start: the box went back to the version before by itself."
    ) in home
    assert "fell back" not in home


def test_the_page_reads_in_the_managers_language(app, box, updates):
    release(box, RUNNING)
    updates.finished(
        {"slot": "A", "version": NEWER, "from": RUNNING},
        "rolled back",
        ["the web UI does not answer"],
    )
    ana = logged_in(app, "ana")
    chosen = post(ana, "/language", {"language": "fr", "next": "/update/"}, "/update/")
    assert chosen.status_code == 302
    try:
        body = main(ana.get("/update/", base_url=BASE))
    finally:
        post(ana, "/language", {"language": "en", "next": "/"}, "/")
    assert "<h1>Mises à jour</h1>" in body
    assert f"La version {NEWER} a été essayée puis abandonnée" in body
    assert "Les pages web ne répondaient pas." in body


def test_going_back_asks_first_and_warns_that_changes_may_be_undone(app, box, updates):
    release(box, RUNNING)
    updates.finished({"slot": "B", "version": RUNNING, "from": OLDER}, "committed", [])
    ana = logged_in(app, "ana")
    page = ana.get("/update/rollback", base_url=BASE)
    body = main(page)
    assert page.status_code == 200 and f"<h1>Go back to version {OLDER}</h1>" in body
    assert "Changes made since the update may be undone" in body
    assert "The box restarts" in body
    # A box in a namespace has no bootloader: the agent says so, and nothing is armed.
    answer = post(ana, "/update/rollback", {}, "/update/rollback")
    assert answer.status_code == 503
    said = main(answer)
    assert "Something went wrong on the box. Please try again." in said
    assert "says nothing of its bootloader" in said
    assert "trial" not in updates.read()


def test_each_refusal_of_a_feed_is_said_plainly_and_nothing_is_installed(app, box, updates):
    release(box, RUNNING)
    feeds, key = box.feeds, box.signing_key

    def published(name, version=NEWER, board=BOARD, now=NOW, days=30):
        bundle = feeds / f"{name}.raucb"
        bundle.write_bytes(os.urandom(4096))
        publish.publish(feeds / name, key, now, bundle, board, version, days)
        bundle.unlink()
        return feeds / name

    tampered = published("tampered")
    data = (tampered / feed.FEED).read_bytes()
    (tampered / feed.FEED).write_bytes(data.replace(b'"size": 4096', b'"size": 4097'))
    published("expired", version=OLDER, now=NOW - timedelta(days=40), days=30)
    published("rpi", board="rpi5")
    published("older", version=OLDER)
    mismatched = published("mismatch")
    [bundle] = mismatched.glob("*.raucb")
    bundle.write_bytes(os.urandom(4096))
    garbage = feeds / "garbage"
    garbage.mkdir()
    (garbage / feed.FEED).write_bytes(b"hello")
    (garbage / feed.SIGNATURE).write_text(imagesign.signature_of(b"hello", key) + "\n")

    ana = logged_in(app, "ana")
    address = "That is not an update feed's address"
    unreachable = "The box could not fetch the feed from that address."
    for url, code, says, detail in (
        ("http://updates.example.org/commonsbox/", 400, address, None),
        ("updates.example.org", 400, address, None),
        (f"https://ana:secret@127.0.0.1:{PORT}/older/", 400, address, "not an update feed address"),
        ("https://127.0.0.1:9/feed/", 503, unreachable, "Connection refused"),
        (f"{FEEDS}/nothing-here/", 503, unreachable, "the server answered 404"),
        (f"{FEEDS}/tampered/", 400, "The feed's signature does not match", "signature"),
        (f"{FEEDS}/expired/", 400, "The feed has expired.", "expired on"),
        (f"{FEEDS}/rpi/", 400, "The feed has no update for this kind of box.", "rpi5"),
        (f"{FEEDS}/older/", 400, "The update is not newer than the version this box runs.", OLDER),
        (f"{FEEDS}/mismatch/", 400, "The update's file is not the one its signed list", "SHA-256"),
        (f"{FEEDS}/garbage/", 400, "That address does not hold an update feed this", "not JSON"),
    ):
        answer = post(ana, "/update/feed", {"url": url}, "/update/")
        body = main(answer)
        assert answer.status_code == code, (url, body)
        if detail:  # the agent's own words, for whoever has to fix it
            said = re.search(r"<summary>What the box said</summary>(.*?)</details>", body)
            assert said and detail in said.group(1), (url, body)
        note = re.search(r'<p class="error" id="url-note">(.*?)</p>', body)
        assert note and says in note.group(1), (url, body)
        assert re.search(r'id="url"[^>]*aria-invalid="true"', body), url
        assert f'value="{url}"' in body.replace("&amp;", "&")  # kept, to be corrected
    assert "trial" not in updates.read()
    assert not list(record.DIR.rglob("*.raucb"))  # nothing copied is left behind

    done = post(ana, "/update/feed", {"url": f"{FEEDS}/older/"}, "/update/")
    assert "Nothing was installed." in main(done)
    published("same", version=RUNNING)
    same = post(ana, "/update/feed", {"url": f"{FEEDS}/same/"}, "/update/")
    assert same.status_code == 302 and same.location.endswith("/update/?done=nothing")
    body = main(ana.get(same.location, base_url=BASE))
    assert (
        '<p role="status">The feed offers nothing newer than the version this box runs.</p>'
    ) in body
    assert f"Last check of {FEEDS}/same/" in re.sub("<[^>]+>", "", body)

    stick = post(ana, "/update/stick", {}, "/update/")
    assert stick.status_code == 302 and stick.location.endswith("/update/?done=no_stick")
    assert "No USB stick plugged into the box holds a newer update." in main(
        ana.get(stick.location, base_url=BASE)
    )

    made(box, "usr/lib/commonsbox/update-feed.pub").unlink()
    unkeyed = post(ana, "/update/feed", {"url": f"{FEEDS}/same/"}, "/update/")
    assert unkeyed.status_code == 400
    assert "This box has no key to check an update's signature" in main(unkeyed)


def test_a_manager_uploads_an_update_file_and_the_agent_takes_it_and_leaves_nothing(
    app, box, updates
):
    release(box, RUNNING)
    uploads = box.box.paths.webui_state / "uploads"
    ana = logged_in(app, "ana")
    page = ana.get("/update/", base_url=BASE)
    assert 'enctype="multipart/form-data"' in main(page) and "Upload and install" in main(page)

    def upload(client, content: bytes | None, token=None):
        data = {"csrf_token": token or csrf(client.get("/update/", base_url=BASE))}
        if content is not None:
            data["bundle"] = (io.BytesIO(content), "next.raucb")
        return client.post("/update/upload", data=data, base_url=BASE)

    # Larger than a form may be (64 KiB): taken, streamed to the uploads folder, copied
    # off by the agent, which then finds (in a namespace) no bootloader to install with.
    answer = upload(ana, os.urandom(300 * 1024))
    body = main(answer)
    assert answer.status_code == 503, body
    said = re.search(r"<summary>What the box said</summary>(.*?)</details>", body)
    assert said and "says nothing of its bootloader" in said.group(1), body
    assert re.search(r'<p class="error" role="alert" id="upload-note">', body), body
    assert list(uploads.iterdir()) == []  # the upload is removed with the request
    assert not list(record.DIR.rglob("*.raucb")) and "trial" not in updates.read()

    nothing = upload(ana, None)
    assert nothing.status_code == 400
    assert "Choose the update's file (it ends in .raucb) first." in main(nothing)

    forged = upload(ana, b"x" * 1024, token="forged")
    assert forged.status_code == 400 and list(uploads.iterdir()) == []

    # A member's body is held to a form's size: refused before anything is written.
    maria = logged_in(app, "maria")
    refused = upload(maria, os.urandom(100 * 1024), token=csrf(maria.get("/", base_url=BASE)))
    assert refused.status_code == 413 and list(uploads.iterdir()) == []


def test_members_may_not_see_or_use_it(app, box, updates):
    release(box, RUNNING)
    updates.finished({"slot": "B", "version": RUNNING, "from": OLDER}, "committed", [])
    maria = logged_in(app, "maria")
    home = maria.get("/", base_url=BASE)
    assert home.status_code == 200 and "/update/" not in text(home)
    page = maria.get("/update/", base_url=BASE)
    assert page.status_code == 403 and "You are not allowed to do that." in text(page)
    token = csrf(home)
    for url, data in (
        ("/update/feed", {"url": f"{FEEDS}/same/"}),
        ("/update/stick", {}),
        ("/update/rollback", {}),
    ):
        answer = maria.post(url, data={**data, "csrf_token": token}, base_url=BASE)
        assert answer.status_code == 403, url
    assert maria.get("/update/rollback", base_url=BASE).status_code == 403
    assert "trial" not in updates.read() and "last_check" not in updates.read()


def test_forms_without_the_pages_token_are_refused(app, box, updates):
    release(box, RUNNING)
    updates.finished({"slot": "B", "version": RUNNING, "from": OLDER}, "committed", [])
    ana = logged_in(app, "ana")
    ana.get("/update/", base_url=BASE)
    for url in ("/update/feed", "/update/stick", "/update/rollback"):
        for data in ({"url": f"{FEEDS}/same/"}, {"csrf_token": "forged"}):
            answer = ana.post(url, data=data, base_url=BASE)
            assert answer.status_code == 400 and "This form has expired." in text(answer), url
    assert "trial" not in updates.read() and "last_check" not in updates.read()


@pytest.fixture
def household_app(household, monkeypatch):  # noqa: F811
    import webui.agent
    from webui import create_app

    monkeypatch.setattr(webui.agent, "Client", ClientAsWebUI)
    return create_app(household.box.paths.socket, testing=True)


def test_the_changes_a_fallback_undid_are_named(household, household_app):  # noqa: F811
    """ana (Portuguese) adds a laptop while version N+1 is tried; the old version comes back
    and puts back its snapshot: the page and the dashboard name that change, in her language."""
    lab = household
    run_as(lab, NEXT)
    web = household_app.test_client()
    assert post(web, "/login", {"name": "ana", "passphrase": "three unrelated words"}, "/login")
    added = post(web, "/devices/", {"name": "Ana's laptop"}, "/devices/")
    assert added.status_code == 302
    revision = lab.api.call("config.history", limit=1)[0]["revision"]
    run_as(lab, TODAY)  # the trial failed: the old slot's agent puts the snapshot back
    web = household_app.test_client()
    post(web, "/login", {"name": "ana", "passphrase": "three unrelated words"}, "/login")

    body = main(web.get("/update/", base_url=BASE))
    assert "voltou a uma versão anterior" in body
    assert "1 alteração foi desfeita" in body
    row = re.search(rf"<tr><td>{revision}</td>.*?</tr>", body)
    assert row, body
    assert "<bdi>ana (admin)</bdi>" in row.group(0)
    assert "<bdi>add device “Ana's laptop”</bdi>" in row.group(0)

    home = main(web.get("/", base_url=BASE))
    assert "1 alteração foi desfeita" in home and 'href="/update/"' in home
