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

from appliance.boxroot import BoxRoot, tree
from appliance.errors import ApplianceError
from appliance.sandbox import BoxSandbox, Netns, run

from .names import Zone, in_netns

WORLD, NAMESERVER, APP = "10.79.0.254", "10.79.0.53", "10.79.0.254"
BOXES = {"box-a.test": "10.79.0.1", "box-b.test": "10.79.0.2"}
MAX_MIB = 1


def tls():
    context = ssl.create_default_context()
    context.check_hostname = False  # the boxes' certificates are their own (self-signed)
    context.verify_mode = ssl.CERT_NONE
    return context


class MailBox:
    def __init__(self, domain, address, world, lower, tmp, tag):
        self.domain, self.address = domain, address
        self.ns = Netns(f"cbm{tag}{domain[4]}")
        run(["ip", "link", "add", f"cbm{tag}{domain[4]}", "type", "veth", "peer", "name", "eth0",
             "netns", self.ns.name])
        run(["ip", "link", "set", f"cbm{tag}{domain[4]}", "netns", world.name])
        world.run(["ip", "link", "set", f"cbm{tag}{domain[4]}", "master", "br0", "up"])
        self.ns.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        self.ns.run(["ip", "link", "set", "eth0", "up"])
        self.root = BoxRoot(self.ns, lower, tmp / domain, domain)
        self.system = self.root.start()
        self.system.write("/run/systemd/resolve/stub-resolv.conf",
                          f"nameserver {NAMESERVER}\n".encode())
        # The agent's own state stays on this machine; its daemons are the box's.
        self.agent = BoxSandbox(self.ns, tmp / f"{domain}-agent", backend="userspace",
                                enter=self.root.pid)
        self.agent.start(timeout=60)
        self.api = self.agent.client()

    def stop(self):
        self.api.close()
        self.agent.stop()
        self.root.stop()
        self.ns.delete()


@pytest.fixture(scope="module")
def mail(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mail")
    tag = str(int(time.time()) % 1000)
    lower = tree()
    world = Netns(f"cbmw{tag}")
    world.run(["ip", "link", "add", "br0", "type", "bridge"])
    world.run(["ip", "addr", "add", f"{WORLD}/24", "dev", "br0"])
    world.run(["ip", "addr", "add", f"{NAMESERVER}/24", "dev", "br0"])
    world.run(["ip", "link", "set", "br0", "up"])
    zone = Zone()
    boxes = {}
    try:
        for domain, address in BOXES.items():
            boxes[domain] = box = MailBox(domain, address, world, lower, tmp, tag)
            box.api.call("mail.settings.set", enabled=True, domain=domain,
                         max_message_mib=MAX_MIB)
            zone.add(domain, "A", address)
            for r in box.api.call("mail.dns"):
                zone.add(r["name"], r["type"], r["value"])
        with in_netns(world.name):
            zone.serve(NAMESERVER)
        yield world, zone, boxes
    finally:
        zone.close()
        for box in boxes.values():
            box.stop()
        world.delete()


def user(box, name):
    box.api.call("users.add", name=name, role="member", passphrase="correct horse battery staple 7")
    return box.api.call("mail.password.add", owner=name, label=f"{name}'s phone")


def message(sender, to, subject, body="Hello from one box to the other."):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_content(body)
    return m


def fetch(world, host, login, subject, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        with in_netns(world.name):
            imap = imaplib.IMAP4_SSL(host, ssl_context=tls())
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
    world, zone, boxes = mail
    a, b = boxes["box-a.test"], boxes["box-b.test"]
    alice, bob = user(a, "alice"), user(b, "bob")
    with in_netns(world.name):
        smtp = smtplib.SMTP(a.address, 587, timeout=30)
    smtp.starttls(context=tls())
    smtp.login(alice["address"], alice["password"])
    smtp.send_message(message(alice["address"], bob["address"], "first federated mail"))
    smtp.quit()

    raw = fetch(world, b.address, bob, "first federated mail")
    parsed = email.message_from_bytes(raw)
    assert parsed["From"] == "alice@box-a.test"
    assert dkim.verify(raw, dnsfunc=zone.dkim_dns), "box B's copy must carry A's valid DKIM signature"
    received = parsed.get_all("Received")
    assert APP not in raw.decode(), "the app's address must not be in the message"
    assert len(received) == 2, received  # box B's SMTP server and its LMTP, not the app's
    assert "box-a.test" in received[-1] and "using TLS" in received[-1], received[-1]


def test_the_box_is_not_an_open_relay(mail):
    world, _, boxes = mail
    with in_netns(world.name):
        smtp = smtplib.SMTP(boxes["box-a.test"].address, 25, timeout=30)
    smtp.ehlo("stranger.test")
    smtp.mail("spammer@stranger.test")
    code, text = smtp.rcpt("victim@box-b.test")
    smtp.quit()
    assert code == 554 and b"Relay access denied" in text, (code, text)


def test_mail_from_outside_to_a_local_user_is_accepted_but_unknown_users_are_not(mail):
    world, _, boxes = mail
    with in_netns(world.name):
        smtp = smtplib.SMTP(boxes["box-b.test"].address, 25, timeout=30)
    smtp.ehlo("stranger.test")
    smtp.mail("someone@stranger.test")
    code, text = smtp.rcpt("nobody@box-b.test")
    smtp.quit()
    assert code == 550, (code, text)


def test_an_oversized_message_is_refused_with_552(mail):
    world, _, boxes = mail
    a = boxes["box-a.test"]
    carol = user(a, "carol")
    with in_netns(world.name):
        smtp = smtplib.SMTP(a.address, 587, timeout=30)
    smtp.starttls(context=tls())
    smtp.login(carol["address"], carol["password"])
    big = message(carol["address"], "bob@box-b.test", "too big", "x" * (MAX_MIB * 1024 * 1024 + 1))
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.send_message(big)
    smtp.close()
    assert refused.value.smtp_code == 552


def test_a_wrong_password_is_refused_and_a_revoked_one_stops_working(mail):
    world, _, boxes = mail
    a = boxes["box-a.test"]
    dave = user(a, "dave")
    with in_netns(world.name):
        smtp = smtplib.SMTP(a.address, 587, timeout=30)
    smtp.starttls(context=tls())
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(dave["address"], "not-the-password")
    assert time.monotonic() - started >= 1.5, "a wrong password is answered slowly"
    smtp.close()
    a.api.call("mail.password.remove", id=dave["app_password"]["id"])
    with in_netns(world.name):
        smtp = smtplib.SMTP(a.address, 587, timeout=30)
    smtp.starttls(context=tls())
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login(dave["address"], dave["password"])
    smtp.close()


def test_a_user_cannot_send_as_someone_else(mail):
    world, _, boxes = mail
    a = boxes["box-a.test"]
    erin = user(a, "erin")
    with in_netns(world.name):
        smtp = smtplib.SMTP(a.address, 587, timeout=30)
    smtp.starttls(context=tls())
    smtp.login(erin["address"], erin["password"])
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtp.send_message(message("alice@box-a.test", "bob@box-b.test", "forged"))
    smtp.close()


@pytest.mark.parametrize("label", ["phone\nX-Injected: 1", "phone\r\nRCPT TO:<x@y>", "", "x" * 65])
def test_app_password_labels_with_line_breaks_or_too_long_are_refused(mail, label):
    _, _, boxes = mail
    a = boxes["box-a.test"]
    before = a.api.call("mail.password.list")
    with pytest.raises(ApplianceError):
        a.api.call("mail.password.add", owner="alice", label=label)
    assert a.api.call("mail.password.list") == before


@pytest.mark.parametrize("domain", ["box-a.test\nmydestination = evil", "no-dot", "a..b", "x" * 300])
def test_a_bad_mail_domain_is_refused_and_the_old_one_kept(mail, domain):
    _, _, boxes = mail
    a = boxes["box-a.test"]
    with pytest.raises(ApplianceError):
        a.api.call("mail.settings.set", domain=domain)
    assert a.api.call("mail.settings.get")["domain"] == "box-a.test"
