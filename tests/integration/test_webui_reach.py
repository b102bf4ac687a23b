"""What the Internet reaches on 443, served for real: gunicorn in the box's namespace on
port 443 behind the box's own firewall, asked with curl from the lab's Internet host
(203.0.113.7) and from a phone over the VPN. From outside only what a person without the
VPN needs opens (an invitation, a one-time device link, mail autoconfig, static files);
login and management say, in the visitor's language, that they open only at home or over
the VPN, until the household widens it. TLS 1.2 offers AEAD ciphers only."""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

import webui.agent
from cblab.sandbox import WebUI
from webui import create_app

from .conftest import BOX_VPN_IP, ClientAsWebUI, Lab, csrf
from .test_webui import claim, post

PASS = "three unrelated words"
BOX_OUTSIDE = "203.0.113.1"  # the box's uplink, as the Internet host reaches it
REFUSED_FR = "ne se gère que depuis le réseau de la maison ou par le VPN"
REFUSED_EN = "managed only from the home network or over the VPN"


def fetch(ns, url: str, language: str = "fr") -> tuple[int, str]:
    done = ns.run(
        ["curl", "-sk", "--max-time", "15", "-H", f"Accept-Language: {language}"]
        + ["-o", "-", "-w", "\n%{http_code}", url],
        check=False,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


@pytest.fixture
def served(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="cbt-reach-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=1, root=root, webui_user="nobody")
    server = None
    try:
        # The web UI's unit may bind 443 (CAP_NET_BIND_SERVICE); here: this namespace's sysctl.
        lab.box_ns.run(["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"])
        server = WebUI(lab.box, 443, host="0.0.0.0", netns=lab.box_ns)
        server.wait_ready()
        lab.api.call(
            "setup.claim",
            code=lab.api.call("setup.code")["code"],
            address="127.0.0.1",
            language="en",
            box_name="Casa",
            admin_name="ana",
            passphrase=PASS,
            timezone="UTC",
            endpoint={"host": "192.0.2.1", "port": 51820},
        )
        phone_device = lab.api.call("vpn.device.add", name="ana's phone")["device"]["id"]
        lab.phone(0, phone_device)
        yield lab
    finally:
        if server:
            server.stop()
        lab.close()
        subprocess.run(["rm", "-rf", str(root)])


def test_from_the_internet_only_invitations_links_and_autoconfig_open(served):
    lab, inet, phone = served, served.inet, served.phone_ns[0]
    outside = f"https://{BOX_OUTSIDE}"
    for path in ("/login", "/", "/setup", "/devices/", "/settings", "/users", "/history"):
        code, body = fetch(inet, outside + path)
        assert code == 403 and REFUSED_FR in body, (path, code, body[:300])
        assert 'name="passphrase"' not in body
    code, body = fetch(inet, outside + "/login", language="en")
    assert code == 403 and REFUSED_EN in body
    # What a person without the VPN needs.
    invitation = lab.api.call("users.invite", name="bea")["token"]
    code, body = fetch(inet, f"{outside}/join/{invitation}")
    assert code == 200 and 'name="passphrase"' in body and "bea" in body
    device = lab.api.call("vpn.device.add", name="bea's laptop")["device"]["id"]
    link = lab.api.call("vpn.device.link", device=device)["token"]
    code, body = fetch(inet, f"{outside}/devices/get/{link}")
    assert code == 200 and REFUSED_FR not in body
    assert fetch(inet, outside + "/static/style.css")[0] == 200
    code, body = fetch(inet, outside + "/.well-known/autoconfig/mail/config-v1.1.xml")
    assert code == 404 and REFUSED_FR not in body  # mail is off here: the answer, not a refusal
    # Over the VPN, the same box's login page.
    code, body = fetch(phone, f"https://{BOX_VPN_IP}/login")
    assert code == 200 and 'name="passphrase"' in body
    # The household widens it: the login page opens from the Internet too.
    lab.api.call("box.settings.set", manage_from_anywhere=True)
    code, body = fetch(inet, outside + "/login")
    assert code == 200 and 'name="passphrase"' in body


def s_client(ns, cipher: str) -> subprocess.CompletedProcess:
    return ns.run(
        ["openssl", "s_client", "-connect", f"{BOX_OUTSIDE}:443", "-tls1_2", "-cipher", cipher],
        check=False,
        input="",
        timeout=15,
    )


def test_tls_1_2_offers_aead_ciphers_only(served):
    for cbc in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA"):
        refused = s_client(served.inet, cbc)
        assert refused.returncode != 0 and "handshake failure" in refused.stderr, cbc
    for aead in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        accepted = s_client(served.inet, aead)
        assert accepted.returncode == 0 and f"Cipher is {aead}" in accepted.stdout, aead


# -- the Settings switch and a join from outside, through the app as the web UI's user --


@pytest.fixture
def web(tmp_path, monkeypatch):
    root = Path(tempfile.mkdtemp(prefix="cbt-reach-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    monkeypatch.setattr(webui.agent, "Client", ClientAsWebUI)
    client = create_app(lab.box.paths.socket, testing=True).test_client()
    client.lab = lab
    yield client
    lab.close()
    subprocess.run(["rm", "-rf", str(root)])


OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}
SETTINGS = {
    "box_name": "Casa",
    "language": "en",
    "timezone": "UTC",
    "endpoint_host": "192.0.2.1",
    "endpoint_port": "51820",
}


def test_the_household_widens_and_narrows_it_on_the_settings_page(web):
    claim(web)
    page = web.get("/settings", base_url="https://box.test").get_data(as_text=True)
    assert "Allow logging in from the Internet" in page
    assert (
        'id="manage_from_anywhere"' in page and "checked" not in page.split("manage_from")[1][:80]
    )
    outside = web.application.test_client()  # another browser, on the Internet
    refused = outside.get("/login", base_url="https://box.test", environ_base=OUTSIDE)
    assert refused.status_code == 403 and REFUSED_EN in refused.get_data(as_text=True)
    assert post(web, "/settings", {**SETTINGS, "manage_from_anywhere": "1"}).status_code == 302
    assert web.lab.api.call("status")["box"]["manage_from_anywhere"] is True
    page = web.get("/settings", base_url="https://box.test").get_data(as_text=True)
    assert 'value="1" checked' in page
    opened = outside.get("/login", base_url="https://box.test", environ_base=OUTSIDE)
    assert opened.status_code == 200 and 'name="passphrase"' in opened.get_data(as_text=True)
    assert post(web, "/settings", SETTINGS).status_code == 302  # unticked: home only again
    assert "manage_from_anywhere" not in web.lab.api.call("status")["box"]
    again = outside.get("/login", base_url="https://box.test", environ_base=OUTSIDE)
    assert again.status_code == 403


def test_an_invitation_accepted_from_the_internet_says_what_now(web):
    claim(web)
    token = web.lab.api.call("users.invite", name="bea")["token"]
    phone = web.application.test_client()
    url = f"/join/{token}"
    form = phone.get(url, base_url="https://box.test", environ_base=OUTSIDE)
    assert form.status_code == 200
    joined = phone.post(
        url,
        data={"passphrase": PASS, "confirm": PASS, "csrf_token": csrf(form)},
        base_url="https://box.test",
        environ_base=OUTSIDE,
    )
    text = joined.get_data(as_text=True)
    assert joined.status_code == 200 and "Welcome, bea: your account is ready." in text
    assert REFUSED_EN in text
    assert "bea" in [u["name"] for u in web.lab.api.call("users.list")]
