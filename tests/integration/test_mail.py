"""Mail between two boxes, with the daemons the box ships (Debian 13's Postfix, Dovecot
and OpenDKIM, from the image recipe's own root file system), each box in its own
namespaces, configured only through its agent's API. A "world" namespace joins them and
serves their DNS; the mail apps are there too, so their address is an outsider's."""

import email
import imaplib
import smtplib
import ssl
import time
from email.message import EmailMessage

import dkim
import pytest

from appliance.errors import ApplianceError
from cblab.relaylab import Idler, RelayWorld, app_tls, chat

APP = RelayWorld.WORLD  # where the mail apps connect from
MAX_MIB = 1


@pytest.fixture(scope="module")
def mail(tmp_path_factory):
    world = RelayWorld(
        tmp_path_factory.mktemp("mail"),
        {"box-a.test": "10.79.0.1", "box-b.test": "10.79.0.2"},
        MAX_MIB,
    )
    yield world
    world.stop()


def user(box, name):
    return box.user(name, f"{name}'s phone")


def rcpt_from_outside(world, box, sender, recipient):
    """A stranger's server offers BOX mail on port 25: the answer to RCPT TO."""
    with world.outside():
        smtp = smtplib.SMTP(world.boxes[box].address, 25, timeout=30)
    smtp.ehlo("stranger.test")
    smtp.mail(sender)
    answer = smtp.rcpt(recipient)
    smtp.quit()
    return answer


def message(sender, to, subject, body="Hello from one box to the other."):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_content(body)
    return m


def fetch(world, host, login, subject, timeout=30):
    """The message with SUBJECT from LOGIN's inbox, polled over IMAP (TLS)."""
    deadline = time.monotonic() + timeout
    while True:
        with world.outside():
            imap = imaplib.IMAP4_SSL(host, ssl_context=app_tls())
        try:
            imap.login(login["address"], login["password"])
            imap.select("INBOX")
            _, found = imap.search(None, "SUBJECT", f'"{subject}"')
            if found[0]:
                _, data = imap.fetch(found[0].split()[-1], "(RFC822)")
                return data[0][1]
        finally:
            imap.logout()
        if time.monotonic() > deadline:
            raise AssertionError(f"{subject!r} did not arrive in {timeout} s")
        time.sleep(0.2)


def test_mail_goes_from_box_a_to_box_b_signed_encrypted_and_without_the_apps_address(mail):
    boxes = mail.boxes
    a, b = boxes["box-a.test"], boxes["box-b.test"]
    alice, bob = user(a, "alice"), user(b, "bob")
    smtp = mail.submission(a.address)
    smtp.login(alice["address"], alice["password"])
    smtp.send_message(message(alice["address"], bob["address"], "first federated mail"))
    smtp.quit()

    raw = fetch(mail, b.address, bob, "first federated mail")
    parsed = email.message_from_bytes(raw)
    assert parsed["From"] == "alice@box-a.test"
    assert dkim.verify(raw, dnsfunc=mail.zone.dkim_dns), (
        "box B's copy must carry A's valid DKIM signature"
    )
    received = parsed.get_all("Received")
    assert APP not in raw.decode(), "the app's address must not be in the message"
    assert len(received) == 2, received  # box B's SMTP server and its LMTP, not the app's
    assert "box-a.test" in received[-1] and "using TLS" in received[-1], received[-1]
    # Box B checked where it came from, and says so to the apps.
    results = " ".join(parsed.get_all("Authentication-Results")).split()
    assert results[0] == "box-b.test;", results
    for method in ("spf=pass", "dkim=pass", "dmarc=pass"):
        assert method in results, results


def test_a_message_to_a_local_user_reaches_an_app_waiting_in_idle(mail):
    boxes = mail.boxes
    b = boxes["box-b.test"]
    frank, grace = user(b, "frank"), user(b, "grace")
    idle = Idler(mail, b.address, grace)
    try:
        smtp = mail.submission(b.address)
        smtp.login(frank["address"], frank["password"])
        started = time.monotonic()
        smtp.send_message(message(frank["address"], grace["address"], "are you there?"))
        smtp.quit()
        assert idle.wait(timeout=30) == 1
        print(f"submission -> IDLE notification: {time.monotonic() - started:.3f} s")
    finally:
        idle.close()


def test_the_box_is_not_an_open_relay(mail):
    code, text = rcpt_from_outside(mail, "box-a.test", "spammer@stranger.test", "victim@box-b.test")
    assert code == 554 and b"Relay access denied" in text, (code, text)


def test_mail_from_outside_to_a_local_user_is_accepted_but_unknown_users_are_not(mail):
    code, text = rcpt_from_outside(mail, "box-b.test", "someone@stranger.test", "nobody@box-b.test")
    assert code == 550, (code, text)


def test_an_oversized_message_is_refused_with_552(mail):
    boxes = mail.boxes
    a = boxes["box-a.test"]
    carol = user(a, "carol")
    smtp = mail.submission(a.address)
    smtp.login(carol["address"], carol["password"])
    big = message(carol["address"], "bob@box-b.test", "too big", "x" * (MAX_MIB * 1024 * 1024 + 1))
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.send_message(big)
    smtp.close()
    assert refused.value.smtp_code == 552


def test_a_wrong_password_is_refused_and_a_revoked_one_stops_working(mail):
    boxes = mail.boxes
    a = boxes["box-a.test"]
    dave = user(a, "dave")
    smtp = mail.submission(a.address)
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(dave["address"], "not-the-password")
    assert time.monotonic() - started >= 1.5, "a wrong password is answered slowly"
    smtp.close()
    a.api.call("mail.password.remove", id=dave["app_password"]["id"])
    smtp = mail.submission(a.address)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(dave["address"], dave["password"])
    smtp.close()


def test_a_new_app_password_works_and_a_revoked_one_fails_at_once_even_right_after_a_login(mail):
    # Dovecot looks at its password files at most once a second: the agent answers only
    # when what it wrote is what the next login sees.
    world, a = mail, mail.boxes["box-a.test"]

    def login(password):
        with world.outside():
            imap = imaplib.IMAP4_SSL(a.address, ssl_context=app_tls())
        try:
            return imap.login(uma["address"], password)[0]
        except imaplib.IMAP4.error as err:
            return str(err)
        finally:
            imap.logout()

    uma = user(a, "uma")
    for _ in range(3):
        assert login(uma["password"]) == "OK"
        tablet = a.api.call("mail.password.add", owner="uma", label="uma's tablet")
        assert login(tablet["password"]) == "OK"
        a.api.call("mail.password.remove", id=uma["app_password"]["id"])
        assert "AUTHENTICATIONFAILED" in login(uma["password"])
        uma = dict(uma, password=tablet["password"], app_password=tablet["app_password"])


def test_a_user_cannot_send_as_someone_else(mail):
    boxes = mail.boxes
    a = boxes["box-a.test"]
    erin = user(a, "erin")
    smtp = mail.submission(a.address)
    smtp.login(erin["address"], erin["password"])
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtp.send_message(message("alice@box-a.test", "bob@box-b.test", "forged"))
    smtp.close()


def test_a_member_cannot_put_another_members_address_in_from(mail):
    a, b = mail.boxes["box-a.test"], mail.boxes["box-b.test"]
    alba, boris = user(a, "alba"), user(a, "boris")
    vera = user(b, "vera")
    smtp = mail.submission(a.address)
    smtp.login(alba["address"], alba["password"])
    # The envelope is alba's own (Postfix checks that); the header says boris.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail(
            alba["address"],
            [vera["address"]],
            message(boris["address"], vera["address"], "from boris, honest").as_bytes(),
        )
    assert refused.value.smtp_code == 550, refused.value
    assert b"only as yourself" in refused.value.smtp_error, refused.value.smtp_error
    smtp.send_message(message(f'"Alba" <{alba["address"]}>', vera["address"], "really alba"))
    smtp.quit()
    raw = fetch(mail, b.address, vera, "really alba")
    assert email.message_from_bytes(raw)["From"] == '"Alba" <alba@box-a.test>'
    assert dkim.verify(raw, dnsfunc=mail.zone.dkim_dns)


def from_the_internet(world, box, mail_from, rcpt, raw):
    """A stranger's server hands BOX a message for RCPT on port 25: the SMTP error, or
    None when the box took it."""
    with world.outside():
        smtp = smtplib.SMTP(world.boxes[box].address, 25, timeout=60)
    try:
        smtp.ehlo("mx.stranger.test")
        smtp.sendmail(mail_from, [rcpt], raw)
    except smtplib.SMTPException as err:
        return err
    finally:
        smtp.close()
    return None


def test_the_internet_cannot_send_as_the_household(mail):
    b = mail.boxes["box-b.test"]
    gwen = user(b, "gwen")
    forged = message("gwen@box-b.test", "gwen@box-b.test", "your password expires").as_bytes()
    refused = from_the_internet(
        mail, "box-b.test", "stranger@stranger.test", gwen["address"], forged
    )
    assert isinstance(refused, smtplib.SMTPDataError) and refused.smtp_code == 550, refused
    assert b"comes only through the box" in refused.smtp_error
    refused = from_the_internet(mail, "box-b.test", "gwen@box-b.test", gwen["address"], forged)
    assert isinstance(refused, smtplib.SMTPSenderRefused) and refused.smtp_code == 550, refused
    honest = message("stranger@stranger.test", "gwen@box-b.test", "hello from a stranger")
    honest["Authentication-Results"] = "box-b.test; dmarc=pass header.from=stranger.test"
    stranger = "stranger@stranger.test"
    assert (
        from_the_internet(mail, "box-b.test", stranger, gwen["address"], honest.as_bytes()) is None
    )
    got = email.message_from_bytes(fetch(mail, b.address, gwen, "hello from a stranger"))
    # stranger.test publishes no DMARC: delivered, labelled; the sender's own claim to
    # speak for box B is gone.
    (results,) = got.get_all("Authentication-Results")
    assert results.startswith("box-b.test;") and "dmarc=none" in results, results


def test_a_forgery_of_a_domain_that_asks_for_reject_is_refused(mail):
    b = mail.boxes["box-b.test"]
    hugo = user(b, "hugo")
    zone = mail.zone.records
    saved = dict(zone)
    try:
        zone[("_dmarc.box-a.test", "TXT")] = ['"v=DMARC1; p=reject; adkim=s; aspf=s"']
        # From the world's address, not box A's; no signature of box A's.
        forged = message("alice@box-a.test", hugo["address"], "from alice, honest").as_bytes()
        refused = from_the_internet(mail, "box-b.test", "alice@box-a.test", hugo["address"], forged)
    finally:
        zone.clear()
        zone.update(saved)
    assert isinstance(refused, smtplib.SMTPDataError) and refused.smtp_code == 550, refused
    assert b"box-a.test asks receivers to refuse mail that fails DMARC" in refused.smtp_error


@pytest.mark.parametrize("label", ["phone\nX-Injected: 1", "phone\r\nRCPT TO:<x@y>", "", "x" * 65])
def test_app_password_labels_with_line_breaks_or_too_long_are_refused(mail, label):
    boxes = mail.boxes
    a = boxes["box-a.test"]
    before = a.api.call("mail.password.list")
    with pytest.raises(ApplianceError):
        a.api.call("mail.password.add", owner="alice", label=label)
    assert a.api.call("mail.password.list") == before


@pytest.mark.parametrize(
    "domain", ["box-a.test\nmydestination = evil", "no-dot", "a..b", "x" * 300]
)
def test_a_bad_mail_domain_is_refused_and_the_old_one_kept(mail, domain):
    boxes = mail.boxes
    a = boxes["box-a.test"]
    with pytest.raises(ApplianceError):
        a.api.call("mail.settings.set", domain=domain)
    assert a.api.call("mail.settings.get")["domain"] == "box-a.test"


def test_chat_federates_between_the_boxes(mail):
    a, b = mail.boxes["box-a.test"], mail.boxes["box-b.test"]
    for box in (a, b):
        box.api.call("chat.settings.set", enabled=True)
    henry, iris = user(a, "henry"), user(b, "iris")
    seconds = chat(mail, (henry, a.address), (iris, b.address), "hello across servers")
    print(f"first federated chat message: {seconds:.3f} s")


def test_chat_refuses_a_wrong_or_revoked_app_password(mail):
    a, b = mail.boxes["box-a.test"], mail.boxes["box-b.test"]
    a.api.call("chat.settings.set", enabled=True)
    b.api.call("chat.settings.set", enabled=True)
    jack, kim = user(a, "jack"), user(b, "kim")
    with pytest.raises(PermissionError):
        chat(mail, ({**jack, "password": "wrong"}, a.address), (kim, b.address), "no")
    a.api.call("mail.password.remove", id=jack["app_password"]["id"])
    with pytest.raises(PermissionError):
        chat(mail, (jack, a.address), (kim, b.address), "no")
    assert chat(mail, (kim, b.address), (user(a, "lena"), a.address), "still works") < 5


def test_mail_apps_find_their_settings_at_the_well_known_address(mail):
    import xml.etree.ElementTree as ET

    from webui import create_app

    a = mail.boxes["box-a.test"]
    web = create_app(a.agent.paths.socket, testing=True).test_client()
    page = web.get("/.well-known/autoconfig/mail/config-v1.1.xml", base_url="https://box-a.test")
    assert page.status_code == 200 and page.mimetype == "application/xml"
    doc = ET.fromstring(page.data)
    assert doc.findtext("emailProvider/incomingServer/hostname") == "box-a.test"
    assert doc.findtext("emailProvider/outgoingServer/port") == "465"


def encrypted_message(sender, to, subject):
    """What a PGP/MIME message looks like on the wire (the ciphertext is not checked)."""
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_type("multipart/encrypted")
    m.set_param("protocol", "application/pgp-encrypted")
    m.set_boundary("b1")
    m.set_payload(None)
    body = (
        "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        "--b1\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----"
        "\r\n\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n--b1--\r\n"
    )
    raw = m.as_bytes().split(b"\n\n", 1)[0] + b"\n\n" + body.encode()
    return raw


def test_encrypted_only_refuses_plain_mail_between_members_but_not_to_the_world(mail):
    b = mail.boxes["box-b.test"]
    nina, omar = user(b, "nina"), user(b, "omar")
    b.api.call("mail.settings.set", encrypted_only=True)
    try:
        smtp = mail.submission(b.address)
        smtp.login(nina["address"], nina["password"])
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.send_message(message(nina["address"], omar["address"], "plain to a member"))
        assert refused.value.smtp_code == 550 and b"encrypted" in refused.value.smtp_error
        smtp.sendmail(
            nina["address"],
            [omar["address"]],
            encrypted_message(nina["address"], omar["address"], "sealed"),
        )
        smtp.send_message(message(nina["address"], "alice@box-a.test", "plain to the world"))
        smtp.quit()
        assert b"BEGIN PGP MESSAGE" in fetch(mail, b.address, omar, "sealed")
    finally:
        b.api.call("mail.settings.set", encrypted_only=False)
    smtp = mail.submission(b.address)  # off again: plain mail between members flows
    smtp.login(nina["address"], nina["password"])
    smtp.send_message(message(nina["address"], omar["address"], "plain again"))
    smtp.quit()
    fetch(mail, b.address, omar, "plain again")


def test_fetched_mail_is_deleted_from_the_box_and_unread_mail_kept(mail):
    from appliance.mail.capability import expunge_fetched
    from appliance.system import System

    b = mail.boxes["box-b.test"]
    pia = user(b, "pia")
    smtp = mail.submission(b.address)
    smtp.login(pia["address"], pia["password"])
    for subject in ("read me", "not yet"):
        smtp.send_message(message(pia["address"], pia["address"], subject))
    smtp.quit()
    fetch(mail, b.address, pia, "read me")  # an app fetches it: \\Seen
    fetch_peek = None
    deadline = time.monotonic() + 30
    while fetch_peek is None and time.monotonic() < deadline:
        with mail.outside():
            imap = imaplib.IMAP4_SSL(b.address, ssl_context=app_tls())
        imap.login(pia["address"], pia["password"])
        imap.select("INBOX")
        _, found = imap.search(None, "UNSEEN", 'SUBJECT "not yet"')
        fetch_peek = found[0] or None
        imap.logout()
        time.sleep(0.2)
    assert fetch_peek, "the unread message must arrive"
    # What the agent does hourly for mail older than the household's setting; here the
    # cut-off is "now", so every fetched message qualifies.
    expunge_fetched(System.inside(b.root.pid), time.time() + 1)
    with mail.outside():
        imap = imaplib.IMAP4_SSL(b.address, ssl_context=app_tls())
    imap.login(pia["address"], pia["password"])
    imap.select("INBOX")
    subjects = []
    _, found = imap.search(None, "ALL")
    for n in found[0].split():
        _, data = imap.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects.append(data[0][1].decode().strip())
    imap.logout()
    assert subjects == ["Subject: not yet"], subjects


def test_mail_stops_without_storage_the_household_chose_and_comes_back(mail):
    a = mail.boxes["box-a.test"]

    def relay_checks():
        return {
            (c["capability"], c["name"]): c
            for c in a.api.call("status")["health"]
            if c["capability"] in ("mail", "chat")
        }

    a.api.call("storage.settings.set", allow_unencrypted=False)
    try:
        checks = relay_checks()
        assert not checks[("mail", "storage")]["ok"]
        assert "no encrypted storage" in checks[("mail", "storage")]["detail"]
        with pytest.raises(OSError):  # Postfix stopped: nothing answers on port 587
            mail.submission(a.address)
    finally:
        a.api.call("storage.settings.set", allow_unencrypted=True)
    checks = relay_checks()
    assert all(c["ok"] for c in checks.values()) and ("mail", "postfix") in checks, checks
    quinn = user(a, "quinn")
    smtp = mail.submission(a.address)
    smtp.login(quinn["address"], quinn["password"])
    smtp.send_message(message(quinn["address"], quinn["address"], "back again"))
    smtp.quit()
    fetch(mail, a.address, quinn, "back again")


class Smarthost:
    """An ISP's relay in the world: TLS first, then a login, then it takes the mail."""

    def __init__(self, world, tmp_path, user, password):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        from appliance.tls import self_signed

        key, cert = self_signed(["smarthost.test"], "An ISP")
        (tmp_path / "key.pem").write_bytes(key)
        (tmp_path / "cert.pem").write_bytes(cert)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        self.received, self.logins = [], []

        def authenticate(server, session, envelope, mechanism, auth_data):
            self.logins.append((auth_data.login.decode(), session.ssl is not None))
            ok = (auth_data.login.decode(), auth_data.password.decode()) == (user, password)
            return AuthResult(success=ok)

        class Handler:
            async def handle_DATA(inner, server, session, envelope):
                self.received.append(envelope)
                return "250 2.0.0 queued"

        with world.outside():  # the controller's thread listens in the world
            self.controller = Controller(
                Handler(),
                hostname=world.WORLD,
                port=587,
                tls_context=tls,
                require_starttls=True,
                authenticator=authenticate,
                auth_require_tls=True,
            )
            self.controller.start()

    def stop(self):
        self.controller.stop()


def test_a_smarthost_gets_the_mail_over_tls_with_the_households_login(mail, tmp_path):
    a = mail.boxes["box-a.test"]
    relay = Smarthost(mail, tmp_path, "household-7", "relay secret")
    try:
        a.api.call(
            "mail.settings.set",
            smarthost={"host": mail.WORLD, "port": 587, "username": "household-7"},
            smarthost_password="relay secret",
        )
        rosa = user(a, "rosa")
        smtp = mail.submission(a.address)
        smtp.login(rosa["address"], rosa["password"])
        smtp.send_message(message(rosa["address"], "aunt@far-away.example", "via the ISP"))
        smtp.quit()
        deadline = time.monotonic() + 30
        while not relay.received and time.monotonic() < deadline:
            time.sleep(0.2)
        assert relay.received, f"nothing reached the smarthost (logins: {relay.logins})"
        got = relay.received[0]
        assert relay.logins == [("household-7", True)]  # logged in, and only after STARTTLS
        assert got.mail_from == rosa["address"] and got.rcpt_tos == ["aunt@far-away.example"]
        assert (
            b"DKIM-Signature:" in got.original_content and APP.encode() not in got.original_content
        )
    finally:
        a.api.call("mail.settings.set", smarthost=None)
        relay.stop()


def test_a_full_mailbox_refuses_more_and_the_sender_hears_why(mail):
    b = mail.boxes["box-b.test"]
    sam, tess = user(b, "sam"), user(b, "tess")
    b.api.call("mail.settings.set", quota_mib=10)
    try:
        smtp = mail.submission(b.address)
        smtp.login(tess["address"], tess["password"])
        chunk = "x" * (900 * 1024)
        for n in range(13):  # 13 x 0.9 MiB into a 10 MiB mailbox
            smtp.send_message(message(tess["address"], sam["address"], f"big {n}", chunk))
        smtp.quit()
        bounce = email.message_from_bytes(
            fetch(mail, b.address, tess, "Undelivered Mail", timeout=60)
        )
        assert "Quota exceeded" in bounce.as_string(), bounce.as_string()[:2000]
    finally:
        b.api.call("mail.settings.set", quota_mib=2048)


def test_the_dns_check_says_which_records_the_world_sees_and_which_not(mail):
    a = mail.boxes["box-a.test"]
    records = {(r["name"], r["type"]): r for r in a.api.call("mail.dns")}
    zone = mail.zone.records
    saved = dict(zone)
    try:
        zone.pop(("_dmarc.box-a.test", "TXT"))  # never published
        zone[("box-a.test", "TXT")] = ['"v=spf1 a:old-server.example -all"']  # an old one
        checked = {(r["name"], r["type"]): r for r in a.api.call("mail.dns", check=True)}
    finally:
        zone.clear()
        zone.update(saved)
    assert checked.keys() == records.keys()
    dkim_name = next(n for n, t in records if n.endswith("._domainkey.box-a.test"))
    assert checked[(dkim_name, "TXT")]["state"] == "published"  # 400 bytes: split in DNS
    assert checked[("box-a.test", "MX")]["state"] == "published"
    assert checked[("_dmarc.box-a.test", "TXT")]["state"] == "missing"
    spf = checked[("box-a.test", "TXT")]
    assert spf["state"] == "different" and spf["found"] == ["v=spf1 a:old-server.example -all"]


def test_an_app_that_keeps_trying_passwords_is_turned_away_for_a_while(mail):
    """Last in this file: it blocks the apps' address on box B for a minute."""
    b = mail.boxes["box-b.test"]
    mona = user(b, "mona")
    codes = []
    for _ in range(15):
        smtp = mail.submission(b.address)
        try:
            smtp.login(mona["address"], "guess")
        except smtplib.SMTPAuthenticationError as err:
            codes.append(err.smtp_code)
        except smtplib.SMTPException as err:
            codes.append(getattr(err, "smtp_code", 0))
            break
        finally:
            smtp.close()
    assert codes[-1] // 100 == 4 and 535 in codes, codes  # refused, then a temporary block
    smtp = mail.submission(b.address)
    with pytest.raises(smtplib.SMTPException) as blocked:  # even the right password, for now
        smtp.login(mona["address"], mona["password"])
    smtp.close()
    assert getattr(blocked.value, "smtp_code", 0) // 100 == 4


def test_imap_logins_that_keep_failing_are_blocked_for_that_address_only(mail):
    """Wrong passwords from one address: then even the right one is refused from there,
    while an app elsewhere logs in. The guesser uses the world's second address, so the
    other tests' apps (on the first) are not blocked."""
    a = mail.boxes["box-a.test"]
    yara = user(a, "yara")
    guesser = mail.NAMESERVER  # also on the world's bridge

    class FromAddress(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            import socket

            raw = socket.create_connection((self.host, self.port), timeout, (guesser, 0))
            return self.ssl_context.wrap_socket(raw, server_hostname=self.host)

    def login(password, source=None):
        with mail.outside():
            kind = FromAddress if source else imaplib.IMAP4_SSL
            imap = kind(a.address, ssl_context=app_tls(), timeout=30)
        try:
            return imap.login(yara["address"], password)[0]
        except imaplib.IMAP4.error as err:
            return str(err)
        finally:
            imap.logout()

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(10) as pool:  # 10 at once: 2 s, not 20
        wrong = list(pool.map(lambda n: login(f"guess {n}", guesser), range(10)))
    assert all("AUTHENTICATIONFAILED" in w for w in wrong), wrong
    started = time.monotonic()
    refused = login(yara["password"], guesser)
    assert "Too many failed logins from your address" in refused, refused  # the right one
    print(f"blocked login answered in {time.monotonic() - started:.2f} s")
    assert login(yara["password"]) == "OK"  # the household's other address is not held back
