"""The web UI (Flask test client) against the real agent in its namespace.

The app connects to the agent as the web UI's own user (nobody), exactly as when
served: the agent sees that uid and acts only for the member whose session it sends.
What this proves is what a member sees: pages, forms, errors tied to fields, CSRF,
headers, and a phone connected with a config downloaded from the page.
"""

import html
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import webui.agent
from webui import create_app

from .conftest import BOX_VPN_IP, ClientAsWebUI, Lab, csrf

PASS = "three unrelated words"


@pytest.fixture
def web(tmp_path, monkeypatch):
    root = Path(tempfile.mkdtemp(prefix="cbt-webui-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=1, root=root, webui_user="nobody")
    monkeypatch.setattr(webui.agent, "Client", ClientAsWebUI)
    client = create_app(lab.box.paths.socket, testing=True).test_client()
    client.lab = lab
    yield client
    lab.close()
    subprocess.run(["rm", "-rf", str(root)])


def post(client, url, data, base="https://box.test"):
    page = client.get(url, base_url=base)
    return client.post(url, data={**data, "csrf_token": csrf(page)}, base_url=base)


def claim(web, **over):
    code = web.lab.api.call("setup.code")["code"]
    data = {
        "code": code,
        "language": "en",
        "box_name": "Home",
        "admin_name": "ana",
        "passphrase": PASS,
        "timezone": "Europe/Lisbon",
        "endpoint_host": "192.0.2.1",
        "endpoint_port": "51820",
        **over,
    }
    return post(web, "/setup", data)


def test_an_unclaimed_box_shows_only_the_claim_page(web):
    for url in ("/", "/devices/", "/login"):
        answer = web.get(url, base_url="https://box.test")
        assert answer.status_code == 302 and answer.location.endswith(("/setup", "/login")), url
    page = web.get("/setup", base_url="https://box.test")
    assert page.status_code == 200 and "Setup code" in page.get_data(as_text=True)


def test_claim_with_errors_tied_to_fields_then_success(web):
    bad = claim(web, passphrase="short", admin_name="Ana Maria")
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in body and 'id="admin_name-note"' in body
    assert claim(web, code="AAAA-BBBB-CCCC").status_code == 400
    done = claim(web)
    assert done.status_code == 302 and done.location.endswith("/")
    home = web.get("/", base_url="https://box.test").get_data(as_text=True)
    assert "Home" in home and "Log out" in home
    assert web.lab.api.call("setup.status")["claimed"] is True


def test_every_form_needs_its_csrf_token(web):
    claim(web)
    answer = web.post("/devices/", data={"name": "phone"}, base_url="https://box.test")
    assert answer.status_code == 400 and "expired" in answer.get_data(as_text=True)
    assert web.lab.api.call("vpn.device.list") == []


def test_headers_on_every_page(web):
    answer = web.get("/setup", base_url="https://box.test")
    csp = answer.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Server" not in answer.headers
    cookie = answer.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_add_a_device_scan_download_connect_revoke(web):
    claim(web)
    bad = post(web, "/devices/", {"name": "bad\nname", "mode": "home"})
    assert bad.status_code == 400 and "line breaks" in bad.get_data(as_text=True)
    added = post(web, "/devices/", {"name": "Grandma's phone", "mode": "home"})
    assert added.status_code == 302
    page = web.get(added.location, base_url="https://box.test").get_data(as_text=True)
    assert "<svg" in page and "Grandma&#39;s phone" in page
    conf = web.get(added.location + "/config", base_url="https://box.test")
    assert conf.headers["Content-Disposition"] == 'attachment; filename="Grandma-s-pho-1.conf"'
    web.lab.phone(0, None, config=conf.get_data(as_text=True))
    assert web.lab.phone_ns[0].ping(BOX_VPN_IP, timeout=3)
    listing = web.get("/devices/", base_url="https://box.test").get_data(as_text=True)
    assert "Grandma&#39;s phone" in listing
    token = csrf(web.get(added.location, base_url="https://box.test"))
    revoked = web.post(
        added.location + "/remove", data={"csrf_token": token}, base_url="https://box.test"
    )
    assert revoked.status_code == 302
    assert not web.lab.phone_ns[0].ping(BOX_VPN_IP, count=2, timeout=1)


def test_arabic_pages_are_right_to_left(web):
    page = web.get("/setup", base_url="https://box.test", headers={"Accept-Language": "ar"})
    assert '<html lang="ar" dir="rtl">' in page.get_data(as_text=True)


def test_no_page_references_anything_outside_the_box(web):
    claim(web)
    post(web, "/devices/", {"name": "phone", "mode": "full"})
    for url in ("/", "/devices/", "/devices/1", "/login", "/static/style.css"):
        body = web.get(url, base_url="https://box.test").get_data(as_text=True)
        external = [
            u
            for u in re.findall(r"(?:https?:)?//[^\s\"'<>)]+", body)
            if not u.startswith("http://www.w3.org/2000/svg")
        ]
        assert external == [], (url, external)


def test_served_over_tls_by_gunicorn_as_an_unprivileged_user(tmp_path):
    """The real server: gunicorn, TLS with the agent's certificate, running as nobody."""
    import ssl
    import urllib.request

    from appliance.tls import fingerprint
    from cblab.sandbox import WebUI

    root = Path(tempfile.mkdtemp(prefix="cbt-web-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    web = WebUI(lab.box, 18443)
    try:
        web.wait_ready()
        assert (
            fingerprint(lab.box.paths.tls_cert.read_bytes())
            == lab.api.call("status")["webui"]["tls_sha256"]
        )
        assert oct(lab.box.paths.tls_key.stat().st_mode & 0o777) == "0o640"
        context = ssl.create_default_context(cafile=str(lab.box.paths.tls_cert))
        context.check_hostname = False
        answer = urllib.request.urlopen(f"{web.url}/setup", context=context, timeout=10)
        assert answer.status == 200 and answer.headers["Server"] == "commonsbox"
        assert "Set up this box" in answer.read().decode()
        with open(f"/proc/{web.process.pid}/status") as f:
            assert "Uid:\t65534" in f.read()
        plain = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:18443/"],
            capture_output=True,
            text=True,
        )
        assert plain.stdout != "200"  # no plain HTTP
    finally:
        web.stop()
        lab.close()
        subprocess.run(["rm", "-rf", str(root)])


def test_admin_pages_users_settings_history_restore(web):
    claim(web)
    added = post(
        web, "/users", {"name": "baraka", "role": "member", "passphrase": "kilima cha mvua njema"}
    )
    assert added.status_code == 302
    weak = post(web, "/users", {"name": "juma", "role": "member", "passphrase": "short"})
    assert weak.status_code == 400 and 'id="passphrase-note"' in weak.get_data(as_text=True)
    page = web.get("/users", base_url="https://box.test").get_data(as_text=True)
    assert "baraka" in page and "Member" in page
    saved = post(
        web,
        "/settings",
        {
            "box_name": "Nyumbani",
            "language": "sw",
            "timezone": "Africa/Nairobi",
            "endpoint_host": "home.example.org",
            "endpoint_port": "51820",
        },
    )
    assert saved.status_code == 302
    assert web.lab.api.call("status")["box"]["name"] == "Nyumbani"
    bad = post(
        web,
        "/settings",
        {
            "box_name": "x",
            "language": "sw",
            "timezone": "Mars/Base",
            "endpoint_host": "",
            "endpoint_port": "",
        },
    )
    assert bad.status_code == 400
    history = web.get("/history", base_url="https://box.test").get_data(as_text=True)
    assert "add user baraka" in history and "ana (admin)" in history
    before = web.lab.api.call("config.history")[-1]["revision"]  # the first revision
    page = web.get(f"/history/{before + 2}", base_url="https://box.test")
    assert "Restore this version" in page.get_data(as_text=True)
    restored = web.post(
        f"/history/{before + 2}/restore",
        data={"csrf_token": csrf(page)},
        base_url="https://box.test",
    )
    assert restored.status_code == 302
    assert web.lab.api.call("config.history", limit=1)[0]["why"] == f"restore revision {before + 2}"


def test_a_member_sees_only_their_own_devices_and_no_admin_pages(web):
    claim(web)
    post(web, "/devices/", {"name": "Ana's laptop", "mode": "home"})
    post(web, "/users", {"name": "baraka", "role": "member", "passphrase": "kilima cha mvua njema"})
    post(web, "/logout", {})
    logged = post(web, "/login", {"name": "baraka", "passphrase": "kilima cha mvua njema"})
    assert logged.status_code == 302
    post(web, "/devices/", {"name": "Baraka's phone", "mode": "full"})
    listing = web.get("/devices/", base_url="https://box.test").get_data(as_text=True)
    assert "Baraka&#39;s phone" in listing and "Ana&#39;s laptop" not in listing
    assert web.get("/devices/1", base_url="https://box.test").status_code == 404
    assert web.get("/devices/1/config", base_url="https://box.test").status_code == 404
    for url in ("/users", "/settings", "/ssh", "/history"):
        assert web.get(url, base_url="https://box.test").status_code == 403, url
    nav = web.get("/", base_url="https://box.test").get_data(as_text=True)
    assert ">Users<" not in nav


def test_wrong_passphrases_slow_down_with_a_clear_message(web):
    claim(web)
    post(web, "/logout", {})
    for _ in range(3):
        assert (
            post(web, "/login", {"name": "ana", "passphrase": "wrong guess here"}).status_code
            == 401
        )
    answer = post(web, "/login", {"name": "ana", "passphrase": PASS})
    assert answer.status_code == 401 and "Too many attempts" in answer.get_data(as_text=True)


def test_too_many_forms_from_one_address_are_slowed_down(web):
    claim(web)
    token = csrf(web.get("/devices/", base_url="https://box.test"))
    codes = [
        web.post(
            "/devices/",
            data={"csrf_token": token, "name": "", "mode": "home"},
            base_url="https://box.test",
        ).status_code
        for _ in range(25)
    ]
    assert 429 in codes and codes[0] == 400
    answer = web.post(
        "/devices/", data={"csrf_token": token, "name": "x"}, base_url="https://box.test"
    )
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert "Too many attempts" in answer.get_data(as_text=True)


ROUTES = [
    ("POST", "/setup"),
    ("POST", "/login"),
    ("POST", "/language"),
    ("POST", "/devices/"),
    ("POST", "/devices/{n}/remove"),
    ("GET", "/devices/{n}"),
    ("GET", "/devices/{n}/config"),
    ("POST", "/users"),
    ("POST", "/users/{s}/remove"),
    ("POST", "/settings"),
    ("GET", "/history/{n}"),
    ("POST", "/history/{n}/restore"),
    ("GET", "/{s}"),
    ("POST", "/ssh/keys"),
    ("POST", "/ssh/keys/remove"),
    ("POST", "/logout"),
]
FIELDS = [
    "name",
    "mode",
    "passphrase",
    "code",
    "language",
    "box_name",
    "admin_name",
    "timezone",
    "endpoint_host",
    "endpoint_port",
    "role",
    "next",
    "key",
    "fingerprint",
    "csrf_token",
]


def test_random_input_to_every_form_never_breaks_the_web_ui(web):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from webui.security import PostLimit

    claim(web)
    web.application.extensions["post_limit"] = PostLimit(burst=10**9)  # fuzz, not flood
    token = csrf(web.get("/devices/", base_url="https://box.test"))
    text = st.text(st.characters(codec="utf-8"), max_size=300) | st.sampled_from(
        [
            "",
            "0",
            "-1",
            "99999999999999999999",
            "a" * 70000,
            "../../etc/passwd",
            "<script>",
            "home",
            "full",
            "admin",
            "ar",
            "Europe/Lisbon",
            "%(name)s",
            "\x00",
            "\r\n",
        ]
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        route=st.sampled_from(ROUTES),
        form=st.dictionaries(st.sampled_from(FIELDS), text),
        n=st.integers(-5, 10**12),
        s=st.text(st.characters(codec="ascii", min_codepoint=33), min_size=1, max_size=40),
        keep_token=st.booleans(),
    )
    def fuzz(route, form, n, s, keep_token):
        method, path = route
        from urllib.parse import quote

        url = path.format(n=n, s=quote(s, safe=""))
        if keep_token:
            form["csrf_token"] = token
        answer = web.open(url, method=method, data=form, base_url="https://box.test")
        assert answer.status_code < 500 or answer.status_code == 503, (
            url,
            form,
            answer.status_code,
        )
        assert "Traceback" not in answer.get_data(as_text=True)

    fuzz()
    assert web.lab.api.call("status")["box"]["claimed"]


def test_a_one_time_link_works_once_and_only_by_post(web):
    claim(web)
    added = post(web, "/devices/", {"name": "Grandma's phone", "mode": "home"})
    made = post(web, added.location, {})
    url = re.search(
        r'<a href="(https://box\.test/devices/get/[^"]+)"', made.get_data(as_text=True)
    ).group(1)
    path = url.removeprefix("https://box.test")
    stranger = create_app(web.lab.box.paths.socket, testing=True).test_client()  # not logged in
    preview = stranger.get(path, base_url="https://box.test")  # a messenger's link preview
    assert preview.status_code == 200 and "Download" in preview.get_data(as_text=True)
    got = stranger.post(path, data={"csrf_token": csrf(preview)}, base_url="https://box.test")
    assert got.status_code == 200 and got.get_data(as_text=True).startswith("[Interface]")
    again = stranger.post(path, data={"csrf_token": csrf(preview)}, base_url="https://box.test")
    assert again.status_code == 404 and "already been used" in again.get_data(as_text=True)


def test_two_step_login_on_then_needed_then_recovery_code(web):
    import pyotp

    claim(web)
    page = post(web, "/account/totp", {})
    secret = re.search(r'<span class="mono">([A-Z2-7]+)</span>', page.get_data(as_text=True)).group(
        1
    )
    assert "<svg" in page.get_data(as_text=True)
    wrong = post(web, "/account/totp/confirm", {"otp": "000000"})
    assert wrong.status_code == 400
    done = post(web, "/account/totp/confirm", {"otp": pyotp.TOTP(secret).now()})
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", done.get_data(as_text=True))
    assert len(codes) == 10
    post(web, "/logout", {})
    half = post(web, "/login", {"name": "ana", "passphrase": PASS})
    assert half.status_code == 401 and "authenticator app" in half.get_data(as_text=True)
    assert 'value="ana"' in half.get_data(as_text=True)
    full = post(web, "/login", {"name": "ana", "passphrase": PASS, "otp": codes[3]})
    assert full.status_code == 302
    assert web.lab.api.call("users.list")[0]["totp"] is True


def test_change_passphrase_ends_sessions_and_removing_a_user(web):
    claim(web)
    post(web, "/users", {"name": "bo", "role": "member", "passphrase": "kilima cha mvua njema"})
    removed = post(web, "/users/bo/remove", {})
    assert removed.status_code == 302 and "bo" not in [
        u["name"] for u in web.lab.api.call("users.list")
    ]
    wrong = post(
        web,
        "/account/passphrase",
        {"old_passphrase": "not it at all", "new_passphrase": "four brand new words"},
    )
    assert wrong.status_code == 400 and 'id="old_passphrase-note"' in wrong.get_data(as_text=True)
    changed = post(
        web,
        "/account/passphrase",
        {"old_passphrase": PASS, "new_passphrase": "four brand new words"},
    )
    assert changed.status_code == 302 and changed.location.endswith("/login")
    assert web.get("/", base_url="https://box.test").status_code == 302  # logged out
    assert (
        post(web, "/login", {"name": "ana", "passphrase": "four brand new words"}).status_code
        == 302
    )


def test_a_member_chooses_their_language_and_it_sticks(web):
    claim(web)
    post(web, "/devices/", {"name": "phone", "mode": "home"})
    chosen = post(web, "/language", {"language": "fr", "next": "/devices/"})
    assert chosen.status_code == 302 and chosen.location.endswith("/devices/")
    page = web.get("/devices/", base_url="https://box.test").get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in page and "Appareils" in page and "0 o<" in page
    assert web.lab.api.call("users.list")[0]["language"] == "fr"  # kept for next time
    for evil in ("//evil.example/", "/\\evil.example/", "https://evil.example/", "/%2F%2Fevil"):
        away = post(web, "/language", {"language": "fr", "next": evil})
        assert away.location.endswith("/") and "evil" not in away.location, evil


def test_a_language_switch_is_a_preference_not_a_configuration_revision(web):
    claim(web)
    revision = web.lab.api.call("config.history", limit=1)[0]["revision"]
    post(web, "/language", {"language": "sw", "next": "/"})
    post(web, "/language", {"language": "fr", "next": "/"})
    assert web.lab.api.call("config.history", limit=1)[0]["revision"] == revision
    web.lab.restart_agent()
    # Another browser, another day: the choice comes from the box, not from a cookie.
    other = web.application.test_client()
    assert post(other, "/login", {"name": "ana", "passphrase": PASS}).status_code == 302
    page = other.get("/devices/", base_url="https://box.test").get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in page


def test_the_agent_sees_the_clients_own_address_not_a_header_it_sent(tmp_path):
    """Served by gunicorn: a login's address is the connection's, so an X-Forwarded-For
    claiming the home network does not escape the failures counted against the sender."""
    import http.cookiejar
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    from cblab.sandbox import WebUI

    root = Path(tempfile.mkdtemp(prefix="cbt-web-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    web = WebUI(lab.box, 18444)
    try:
        web.wait_ready()
        code = lab.api.call("setup.code")["code"]
        lab.api.call(
            "setup.claim", code=code, address="192.168.1.2", language="en", box_name="Home",
            admin_name="ana", passphrase="three unrelated words", timezone="UTC",
        )  # fmt: skip
        context = ssl.create_default_context(cafile=str(lab.box.paths.tls_cert))
        context.check_hostname = False
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )

        def log_in(passphrase: str, claimed_address: str) -> str:
            form = opener.open(f"{web.url}/login", timeout=10).read().decode()
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            data = {"csrf_token": token, "name": "ana", "passphrase": passphrase}
            request = urllib.request.Request(
                f"{web.url}/login",
                data=urllib.parse.urlencode(data).encode(),
                headers={"X-Forwarded-For": claimed_address, "X-Real-IP": claimed_address},
            )
            try:
                return opener.open(request, timeout=10).read().decode()
            except urllib.error.HTTPError as err:
                return err.read().decode()

        for i in range(3):  # each failure claims another address on the Internet
            assert "Wrong name or passphrase" in log_in("wrong guess here", f"198.51.100.{i}")
        # The failures are the connection's (127.0.0.1, the box itself: home), whatever
        # the headers said: a login "from home" waits, one from the Internet does not.
        assert "Too many attempts" in log_in("three unrelated words", "192.168.1.9")
        assert lab.api.call("auth.login", name="ana", passphrase="three unrelated words",
                            address="203.0.113.5")["session"]  # fmt: skip
    finally:
        web.stop()
        lab.close()
        subprocess.run(["rm", "-rf", str(root)])


def test_the_handover_page_ends_the_installers_access_and_lists_what_ended(web):
    claim(web)
    post(
        web, "/users", {"name": "ines", "role": "installer", "passphrase": "installer visit phrase"}
    )
    installer = create_app(web.lab.box.paths.socket, testing=True).test_client()
    assert (
        post(
            installer, "/login", {"name": "ines", "passphrase": "installer visit phrase"}
        ).status_code
        == 302
    )
    invited = post(installer, "/users/invite", {"invite_name": "eve", "invite_role": "admin"})
    join = re.search(r"https://box\.test(/join/[^\"<\s]+)", invited.get_data(as_text=True)).group(1)
    post(installer, "/devices/", {"name": "Ines's test phone", "mode": "home"})
    post(web, "/devices/", {"name": "Ana's phone", "mode": "home"})
    post(
        installer,
        "/users",
        {"name": "kito", "role": "member", "passphrase": "kilima cha mvua njema"},
    )

    page = web.get("/users", base_url="https://box.test").get_data(as_text=True)
    assert 'name="rekey_devices"' in page and 'name="handover_passphrase"' not in page  # no disk
    assert "Accounts the installer created" in page and "<bdi>kito</bdi>" in page
    forged = web.post("/users/handover", data={"rekey_devices": "1"}, base_url="https://box.test")
    assert forged.status_code == 400  # no CSRF token: nothing ended
    assert "ines" in [u["name"] for u in web.lab.api.call("users.list")]

    done = post(web, "/users/handover", {"rekey_devices": "1"})
    shown = html.unescape(done.get_data(as_text=True))
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert "The installer's access has ended" in shown
    assert re.search(r"<dt>Invitations</dt><dd>1</dd>", shown), shown
    assert re.search(r"<dt>Accounts</dt><dd><bdi>ines</bdi></dd>", shown)
    assert "Accounts the installer created" in shown and "<bdi>kito</bdi>" in shown
    assert "<dt>Devices</dt><dd>1: <bdi>Ines's test phone</bdi></dd>" in shown
    assert "Devices with new keys" in shown and "<bdi>Ana's phone</bdi>" in shown
    gone = web.get(join, base_url="https://box.test")
    assert gone.status_code == 404  # the installer's admin invitation died with the access
    assert installer.get("/", base_url="https://box.test").status_code == 302  # logged out


def test_the_device_limit_and_history_kept_are_set_and_revisions_pinned_on_the_pages(web):
    claim(web)
    settings = {
        "box_name": "Home",
        "language": "en",
        "timezone": "Europe/Lisbon",
        "endpoint_host": "192.0.2.1",
        "endpoint_port": "51820",
    }
    page = web.get("/settings", base_url="https://box.test").get_data(as_text=True)
    assert re.search(r'name="devices_per_member" type="text" value="20"', page)
    assert re.search(r'name="keep" type="text" value="500"', page)
    bad = post(web, "/settings", {**settings, "devices_per_member": "0", "keep": "50"})
    assert bad.status_code == 400
    assert "Enter a whole number from 1 to 1000." in bad.get_data(as_text=True)
    saved = post(web, "/settings", {**settings, "devices_per_member": "2", "keep": "50"})
    assert saved.status_code == 302
    assert web.lab.api.call("config.retention") == {"keep": 50}
    post(web, "/devices/", {"name": "laptop", "mode": "home"})
    post(web, "/devices/", {"name": "phone", "mode": "home"})
    refused = post(web, "/devices/", {"name": "tablet", "mode": "home"})
    assert refused.status_code == 400
    assert "as many devices as the box allows" in refused.get_data(as_text=True)

    first = web.lab.api.call("config.history", limit=100)[-1]["revision"]
    history = web.get("/history", base_url="https://box.test")
    assert "The newest 50 versions are kept" in history.get_data(as_text=True)
    pinned = web.post(
        f"/history/{first}/pin",
        data={"csrf_token": csrf(history), "pinned": "1"},
        base_url="https://box.test",
    )
    assert pinned.status_code == 302
    assert web.lab.api.call("config.history", limit=100)[-1]["pinned"]
    page = web.get("/history", base_url="https://box.test").get_data(as_text=True)
    assert ">Unpin</button>" in page


class _CountedSocket:
    """The agent's socket, with each request line the web UI sends kept in SENT."""

    def __init__(self, sock, sent: list):
        self.sock, self.sent = sock, sent

    def sendall(self, data: bytes) -> None:
        self.sent.append(json.loads(data))
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def test_the_device_list_asks_the_agent_once_and_an_ended_session_still_counts_for_nothing(
    web, monkeypatch
):
    """The page's own call also tells who the member is (it was two round trips: who is
    this, then the devices); every request with a session still has it checked."""
    claim(web)
    post(web, "/devices/", {"name": "Ana's phone", "mode": "home"})
    sent: list = []

    class Counted(ClientAsWebUI):
        def _connect(self):
            super()._connect()
            self._sock = _CountedSocket(self._sock, sent)

    monkeypatch.setattr(webui.agent, "Client", Counted)
    page = web.get("/devices/", base_url="https://box.test")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Ana&#39;s phone" in body
    assert "Log out (<bdi>ana</bdi>)" in body and ">Users<" in body  # the member's own nav
    assert [r["method"] for r in sent] == ["vpn.device.live"]
    sent.clear()
    assert web.get("/static/style.css", base_url="https://box.test").status_code == 200
    assert [r["method"] for r in sent] == ["auth.whoami"]  # a static file's too

    # Another browser changes the passphrase: this browser's session ends with it.
    other = web.application.test_client()
    assert post(other, "/login", {"name": "ana", "passphrase": PASS}).status_code == 302
    changed = post(
        other,
        "/account/passphrase",
        {"old_passphrase": PASS, "new_passphrase": "four brand new words"},
    )
    assert changed.status_code == 302
    sent.clear()
    ended = web.get("/devices/", base_url="https://box.test")
    assert ended.status_code == 302 and ended.location.endswith("/login")
    assert "__Host-commonsbox=;" in ended.headers["Set-Cookie"]  # forgotten
    assert [r["method"] for r in sent] == ["vpn.device.live"]
    login = web.get("/login", base_url="https://box.test").get_data(as_text=True)
    assert "Log out" not in login and "Ana&#39;s phone" not in login
