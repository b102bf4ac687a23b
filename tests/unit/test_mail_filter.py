"""The encrypted-only milter, spoken to as Postfix speaks to it (milter protocol 6 over
its Unix socket), and how the agent turns it and the deletion of fetched mail on."""

import json
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest

from appliance.mail import inbound, milter, sealed, sender
from appliance.mail.capability import EXPUNGE_EVERY, MailCapability
from appliance.mail.render import postfix_master
from appliance.mail.schema import MailSettings
from appliance.schema import Desired

REFUSED, GO_ON = b"y", b"c"
ALICE = "alice@box.test"
ALICE_LOGIN = ALICE.encode()


class Postfix:
    """The MTA's side of one milter connection."""

    def __init__(self, path, role=milter.SEALED):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.send(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
        cmd, data = self.reply()
        assert cmd == b"O" and struct.unpack(">III", data)[2] == milter.PROTOCOL[role]

    def send(self, cmd, data=b""):
        self.sock.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def reply(self):
        size = struct.unpack(">I", self.sock.recv(4))[0]
        data = b""
        while len(data) < size:
            data += self.sock.recv(size - len(data))
        return data[:1], data[1:]

    def message(self, recipients, headers, body=b"", login=ALICE_LOGIN):
        """Envelope, headers and body, as Postfix sends them; the filter's verdict."""
        self.send(b"D", b"M{auth_authen}\0" + login + b"\0")
        self.send(b"M", b"<" + login + b">\0")
        assert self.reply()[0] == GO_ON
        for rcpt, mailer in recipients:
            self.send(b"D", b"R{rcpt_mailer}\0" + mailer + b"\0{rcpt_addr}\0" + rcpt + b"\0")
            self.send(b"R", b"<" + rcpt + b">\0")
            assert self.reply()[0] == GO_ON
        for name, value in headers:
            self.send(b"L", name + b"\0" + value + b"\0")
            assert self.reply()[0] == GO_ON
        self.send(b"N")
        answer = self.reply()
        if answer[0] != GO_ON:
            self.send(b"A")
            return answer
        if body:
            self.send(b"B", body)
            assert self.reply()[0] == GO_ON
        self.send(b"E")
        return self.reply()

    def raw(self, recipients, raw: bytes, login=ALICE_LOGIN):
        head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        headers = []
        for line in head.split(b"\n"):
            if line[:1] in (b" ", b"\t"):
                headers[-1] = (headers[-1][0], headers[-1][1] + b"\n" + line)
            else:
                name, _, value = line.partition(b":")
                headers.append((name, value.lstrip()))
        return self.message(recipients, headers, body.replace(b"\n", b"\r\n"), login)


@contextmanager
def running_filter(tmp_path, domain="box.test"):
    """The filter as the box runs it (a process of its own), and its socket directory."""
    config = tmp_path / "filter.json"
    config.write_text(json.dumps({"domain": domain}))
    path = tmp_path / "milter.sock"
    proc = subprocess.Popen(
        [sys.executable, "-I", milter.__file__, str(path), "--config", str(config)]
    )
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "inbound.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield tmp_path
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


MEMBER, WORLD = (b"omar@box.test", b"lmtp"), (b"gran@example.org", b"smtp")

PGP_MIME = b"""From: alice@box.test
To: omar@box.test
Subject: ...
MIME-Version: 1.0
Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";
 boundary="b1"

This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)
--b1
Content-Type: application/pgp-encrypted
Content-Description: PGP/MIME version identification

Version: 1

--b1
Content-Type: application/octet-stream; name="encrypted.asc"
Content-Disposition: inline; filename="encrypted.asc"

-----BEGIN PGP MESSAGE-----

hQEMA5Cx
-----END PGP MESSAGE-----

--b1--
"""
PLAIN = b"""From: alice@box.test
To: omar@box.test
Subject: hi
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Meet at noon.
"""


def variant(old: bytes, new: bytes, message: bytes = PGP_MIME) -> bytes:
    assert old in message
    return message.replace(old, new, 1)


SEALED_CASES = {
    "pgp/mime": (PGP_MIME, None),
    "a secure-join request (delta chat)": (
        b"From: alice@box.test\nSecure-Join: vc-request\nContent-Type: text/plain\n\nhi\n",
        None,
    ),
    "plain text": (PLAIN, "not multipart/encrypted"),
    "no content-type (plain text)": (b"From: alice@box.test\n\nhi\n", "MIME-Version"),
    "content-type twice, encrypted last": (
        variant(b"MIME-Version: 1.0\n", b"MIME-Version: 1.0\nContent-Type: text/plain\n"),
        "content-type header appears more than once",
    ),
    "content-type twice, encrypted first": (
        variant(b"\n\nThis is", b"\nContent-Type: text/plain\n\nThis is"),
        "content-type header appears more than once",
    ),
    "mime-version twice": (
        variant(b"MIME-Version: 1.0\n", b"MIME-Version: 1.0\nMIME-Version: 1.0\n"),
        "mime-version header appears more than once",
    ),
    "no mime-version": (variant(b"MIME-Version: 1.0\n", b""), "MIME-Version"),
    "multipart without boundary": (
        variant(b';\n boundary="b1"', b""),
        "not one boundary",
    ),
    "boundary twice": (
        variant(b'boundary="b1"', b'boundary="b1"; boundary="b2"'),
        "not one boundary",
    ),
    "a plain third part": (
        variant(b"--b1--", b"--b1\nContent-Type: text/plain\n\nhello in clear\n--b1--"),
        "not exactly two parts",
    ),
    "a nested multipart": (
        variant(
            b'Content-Type: application/octet-stream; name="encrypted.asc"',
            b'Content-Type: multipart/mixed; boundary="in"',
        ),
        "not the encrypted data",
    ),
    "clear text in the encrypted part": (
        variant(b"-----BEGIN PGP MESSAGE-----\n\nhQEMA5Cx\n-----END PGP MESSAGE-----", b"hi!"),
        "not an armored PGP message",
    ),
    "clear text after the closing boundary": (
        variant(b"--b1--\n", b"--b1--\nP.S. meet at noon\n"),
        "not delimited",
    ),
    "never closed": (variant(b"--b1--\n", b""), "not delimited"),
    "a part's content-type twice": (
        variant(
            b"Content-Type: application/pgp-encrypted\n",
            b"Content-Type: text/plain\nContent-Type: application/pgp-encrypted\n",
        ),
        "not the PGP/MIME version",
    ),
    "secure-join twice": (
        b"From: a@box.test\nSecure-Join: vc-auth-required\nSecure-Join: vc-request\n\nhi\n",
        "secure-join header appears more than once",
    ),
    "a secure-join that is not a request": (
        b"From: a@box.test\nSecure-Join: vc-auth-required\nContent-Type: text/plain\n\nhi\n",
        "MIME-Version",
    ),
}


@pytest.mark.parametrize("case", SEALED_CASES)
def test_encrypted_only_passes_pgp_mime_alone_and_refuses_anything_ambiguous(case):
    raw, why = SEALED_CASES[case]
    if why is None:
        assert sealed.refusal(raw) is None
    else:
        assert why in (sealed.refusal(raw) or "passed")


def test_the_filter_refuses_plain_mail_to_members_only(tmp_path):
    with running_filter(tmp_path) as where:
        mta = Postfix(where / "sealed.sock")
        cmd, text = mta.raw([MEMBER], PLAIN)
        assert cmd == REFUSED and text.startswith(b"550 5.7.1 ") and b"encrypted" in text
        assert mta.raw([WORLD], PLAIN)[0] == GO_ON
        assert mta.raw([WORLD, MEMBER], PLAIN)[0] == REFUSED  # one member is enough
        assert mta.raw([MEMBER], PGP_MIME)[0] == GO_ON
        twice = SEALED_CASES["content-type twice, encrypted last"][0]
        cmd, text = mta.raw([MEMBER], twice)
        assert cmd == REFUSED and b"more than once" in text, text
        mta.send(b"Q")
    assert not (tmp_path / "sealed.sock").exists(), "the filter removes its sockets"


FROM_CASES = {
    "own address": ([("From", "alice@box.test")], None),
    "own address, display name": ([("From", '"Alice" <alice@box.test>')], None),
    "own address, other case": ([("From", "Alice <ALICE@Box.Test>")], None),
    "another member": ([("From", "bob@box.test")], "only as yourself"),
    "another member, own name shown": ([("From", '"alice@box.test" <bob@box.test>')], "yourself"),
    "two addresses": ([("From", "alice@box.test, bob@box.test")], "one address"),
    "two from headers": ([("From", "alice@box.test"), ("From", "bob@box.test")], "exactly one"),
    "no from": ([("To", "x@y.test")], "exactly one From"),
    "garbage": ([("From", "alice@box.test <bob@box.test>")], "one address"),
    "group": ([("From", "friends: alice@box.test;")], "one address"),
    "sender someone else": (
        [("From", "alice@box.test"), ("Sender", "bob@box.test")],
        "Sender must be",
    ),
    "sender self": ([("From", "alice@box.test"), ("Sender", "Alice <alice@box.test>")], None),
}


@pytest.mark.parametrize("case", FROM_CASES)
def test_a_member_sends_only_as_themselves(case):
    headers, why = FROM_CASES[case]
    if why is None:
        assert sender.refusal(ALICE, headers) is None
    else:
        assert why in (sender.refusal(ALICE, headers) or "passed")


def test_the_submission_filter_refuses_another_members_from_with_the_reason(tmp_path):
    with running_filter(tmp_path) as where:
        mta = Postfix(where / "milter.sock", milter.SUBMISSION)
        cmd, text = mta.message([WORLD], [(b"From", b"bob@box.test")])
        assert cmd == REFUSED and text.startswith(b"550 5.7.1 you can send only as yourself")
        assert mta.message([WORLD], [(b"From", b'"Alice" <alice@box.test>')])[0] == GO_ON


def master_options(settings):
    options, service = {}, None
    for line in postfix_master(settings).decode().splitlines()[1:]:
        if line.startswith(" "):
            options[service].append(line.strip())
        else:
            service = " ".join(line.split()[:2])
            options[service] = []
    return options


def test_every_port_has_its_filter_and_encrypted_only_mode_switches_the_submission_one():
    dkim = "unix:/run/opendkim/opendkim.sock"
    for encrypted_only, socket_name in ((False, "milter.sock"), (True, "sealed.sock")):
        options = master_options(
            MailSettings(enabled=True, domain="box.test", encrypted_only=encrypted_only)
        )
        sealed_or_not = f"-o smtpd_milters=unix:/run/commonsbox-mailfilter/{socket_name},{dkim}"
        assert sorted(s for s, o in options.items() if sealed_or_not in o) == [
            "submission inet",
            "submissions inet",
        ]
        # Port 25: the checks of the Internet's mail, never the members' rules.
        assert (
            "-o smtpd_milters=unix:/run/commonsbox-mailfilter/inbound.sock"
            in (options["smtp inet"])
        )


class Recorder:
    def __init__(self):
        self.commands = []

    def run(self, cmd, **_):
        self.commands.append(cmd)


def test_fetched_mail_is_deleted_hourly_after_the_households_days(tmp_path):
    system = Recorder()
    cap = MailCapability.__new__(MailCapability)
    cap.system, cap._expunged_at = system, float("-inf")
    desired = Desired.new()
    keep = desired.replace(mail=MailSettings(enabled=True, domain="box.test"))
    week = desired.replace(
        mail=MailSettings(enabled=True, domain="box.test", delete_fetched_after_days=7)
    )
    now = 1_800_000_000
    cap.housekeeping(keep, now)
    assert system.commands == []  # 0 days: the household keeps its mail
    cap.housekeeping(week, now)
    cap.housekeeping(week, now + EXPUNGE_EVERY - 1)  # not again within the hour
    cap.housekeeping(week, now + EXPUNGE_EVERY)
    assert system.commands == [
        ["doveadm", "expunge", "-A", "mailbox", "*", "SEEN", "savedbefore", str(now - 7 * 86400)],
        [
            "doveadm",
            "expunge",
            "-A",
            "mailbox",
            "*",
            "SEEN",
            "savedbefore",
            str(now + EXPUNGE_EVERY - 7 * 86400),
        ],
    ]
    cap.housekeeping(week.replace(mail=replace(week.mail, enabled=False)), now + 10**6)
    assert len(system.commands) == 2


OWN_DOMAIN_CASES = {
    "envelope": ("alice@box.test", [("From", "x@example.org")], True),
    "from": ("x@example.org", [("From", '"Alice" <alice@box.test>')], True),
    "from, other case": ("", [("From", "ALICE@BOX.TEST")], True),
    "from, a subdomain": ("", [("From", "a@mail.box.test")], True),
    "from, unparseable": ("", [("From", "alice@box.test <x@example.org>")], True),
    "sender": ("x@example.org", [("From", "x@example.org"), ("Sender", "bob@box.test")], True),
    "a look-alike domain": ("x@notbox.test", [("From", "a@box.test.example.org")], False),
    "someone else": ("x@example.org", [("From", "x@example.org")], False),
    "a bounce": ("", [("From", "MAILER-DAEMON@example.org")], False),
}


@pytest.mark.parametrize("case", OWN_DOMAIN_CASES)
def test_mail_from_the_internet_never_claims_the_households_domain(case):
    mail_from, headers, refused = OWN_DOMAIN_CASES[case]
    assert bool(inbound.own_domain_refusal("box.test", mail_from, headers)) == refused


def two_labels(domain):
    return ".".join(domain.split(".")[-2:])


DNS = {
    "_dmarc.strict.example": ["v=DMARC1; p=reject; adkim=s; aspf=s"],
    "_dmarc.relaxed.example": ["v=DMARC1; p=reject"],
    "_dmarc.watch.example": ["v=DMARC1; p=none"],
    "_dmarc.sub.example": ["v=DMARC1; p=none; sp=reject"],
    "_dmarc.two.example": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "_dmarc.broken.example": ["v=DMARC1; p=maybe"],
}


def txt(name):
    if name == "_dmarc.down.example":
        raise inbound.TempError("timeout")
    return DNS.get(name, [])


# (From domain, SPF (result, domain), DKIM d= that passed) -> (DMARC result, policy)
DMARC_CASES = {
    "spf aligned": ("strict.example", ("pass", "strict.example"), [], ("pass", "reject")),
    "dkim aligned": ("strict.example", ("fail", "x.test"), ["strict.example"], ("pass", "reject")),
    "nothing passes": ("strict.example", ("fail", "strict.example"), [], ("fail", "reject")),
    "spf passes for another domain": (
        "strict.example",
        ("pass", "spammer.test"),
        ["spammer.test"],
        ("fail", "reject"),
    ),
    "strict: a subdomain is not aligned": (
        "strict.example",
        ("pass", "mail.strict.example"),
        [],
        ("fail", "reject"),
    ),
    "relaxed: a subdomain is aligned": (
        "relaxed.example",
        ("pass", "bounces.relaxed.example"),
        [],
        ("pass", "reject"),
    ),
    "p=none": ("watch.example", ("fail", "watch.example"), [], ("fail", "none")),
    "subdomain: sp applies": ("a.sub.example", ("none", "a.sub.example"), [], ("fail", "reject")),
    "no record": ("plain.example", ("none", "plain.example"), [], ("none", "")),
    "two records count as none": ("two.example", ("fail", "x"), [], ("none", "")),
    "no valid policy": ("broken.example", ("fail", "x"), [], ("none", "")),
}


@pytest.mark.parametrize("case", DMARC_CASES)
def test_dmarc_decides_as_the_rfc_says(case):
    from_domain, spf, dkim, expected = DMARC_CASES[case]
    assert inbound.dmarc(from_domain, spf, dkim, txt, two_labels) == expected


def decide(mail_from, headers, spf="fail", dkim=()):
    return inbound.decide(
        "box.test",
        mail_from,
        "mx.example",
        headers,
        spf=lambda: spf,
        dkim=lambda: list(dkim),
        txt=txt,
        org=two_labels,
    )


def test_inbound_verdicts_refuse_forgeries_and_label_the_rest():
    forged = decide("x@strict.example", [("From", "ceo@strict.example")])
    assert forged.refusal and "asks receivers to refuse" in forged.refusal
    genuine = decide(
        "x@strict.example", [("From", "ceo@strict.example")], "pass", [("pass", "strict.example")]
    )
    assert genuine.refusal is None and genuine.results == [
        "spf=pass smtp.mailfrom=strict.example",
        "dkim=pass header.d=strict.example",
        "dmarc=pass policy.dmarc=reject header.from=strict.example",
    ]
    watched = decide("x@watch.example", [("From", "a@watch.example")])
    assert watched.refusal is None and "dmarc=fail policy.dmarc=none" in watched.results[-1]
    assert decide("x@down.example", [("From", "a@down.example")]).tempfail
    assert decide("", [("From", "a@x.example"), ("From", "b@y.example")]).refusal
    assert "box.test" in (decide("a@box.test", [("From", "a@box.test")]).refusal or "")


def test_an_address_with_too_many_failed_logins_is_refused_for_a_while_others_are_not():
    from appliance.mail import authpolicy

    now = [1000.0]
    failures = authpolicy.Failures(limit=3, window=600, clock=lambda: now[0])

    def allowed(address):
        return authpolicy.answer(failures, "allow", {"remote": address})["status"] == 0

    for _ in range(3):
        assert allowed("203.0.113.9")
        authpolicy.answer(failures, "report", {"remote": "203.0.113.9", "success": False})
        now[0] += 10
    assert not allowed("203.0.113.9")  # even with the right password, for now
    assert allowed("192.168.1.20")  # the household at home is not held back
    # The refused tries do not prolong the block; it ends when the first failure is old.
    authpolicy.answer(
        failures, "report", {"remote": "203.0.113.9", "success": False, "policy_reject": True}
    )
    now[0] = 1000.0 + 600 + 1
    assert allowed("203.0.113.9")


def test_the_organizational_domain_follows_the_public_suffix_list():
    suffixes = inbound.PublicSuffixes(
        "// comment\nuk\nco.uk\n*.ck\n!www.ck\n\u0440\u0444\n// ===END ICANN DOMAINS===\n"
    )
    org = suffixes.org_domain
    assert org("mail.example.co.uk") == "example.co.uk"
    assert org("example.co.uk") == "example.co.uk"
    assert org("a.b.c.ck") == "b.c.ck"  # *.ck: every name under ck is a suffix
    assert org("www.ck") == "www.ck"  # ... except www.ck
    assert org("mx.box-a.test") == "box-a.test"  # unlisted: the default rule "*"
    assert org("xn--80ak6aa92e.xn--p1ai") == "xn--80ak6aa92e.xn--p1ai"  # .рф, as mail has it
    assert org("co.uk") == "co.uk"
