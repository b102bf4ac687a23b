"""The encrypted-only milter, spoken to as Postfix speaks to it (milter protocol 6 over
its Unix socket), and how the agent turns it and the deletion of fetched mail on."""

import socket
import struct
import subprocess
import sys
import time
from dataclasses import replace

from appliance.mail import milter
from appliance.mail.capability import EXPUNGE_EVERY, MailCapability
from appliance.mail.render import postfix_master
from appliance.mail.schema import MailSettings
from appliance.schema import Desired

REFUSED, GO_ON = b"y", b"c"


class Postfix:
    """The MTA's side of one milter connection."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.send(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF))
        cmd, data = self.reply()
        assert cmd == b"O" and struct.unpack(">III", data)[2] == milter.PROTOCOL

    def send(self, cmd, data=b""):
        self.sock.sendall(struct.pack(">I", len(data) + 1) + cmd + data)

    def reply(self):
        size = struct.unpack(">I", self.sock.recv(4))[0]
        data = b""
        while len(data) < size:
            data += self.sock.recv(size - len(data))
        return data[:1], data[1:]

    def message(self, recipients, headers):
        """Envelope and headers; the filter's answer at the end of the headers."""
        self.send(b"M", b"<nina@box.test>\0")
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
        if answer[0] == GO_ON:
            self.send(b"E")
            assert self.reply()[0] == GO_ON
        else:
            self.send(b"A")
        return answer


def test_the_filter_refuses_plain_mail_to_members_only(tmp_path):
    path = tmp_path / "milter.sock"
    proc = subprocess.Popen([sys.executable, "-I", milter.__file__, str(path)])
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        mta = Postfix(path)
        plain = [(b"Subject", b"hi"), (b"Content-Type", b"text/plain; charset=utf-8")]
        sealed = [(b"Content-Type", b'Multipart/Encrypted; protocol="application/pgp-encrypted"')]
        member, world = (b"omar@box.test", b"lmtp"), (b"gran@example.org", b"smtp")
        cmd, text = mta.message([member], plain)
        assert cmd == REFUSED and text.startswith(b"550 5.7.1 ") and b"encrypted" in text
        assert mta.message([world], plain)[0] == GO_ON
        assert mta.message([world, member], plain)[0] == REFUSED  # one member is enough
        assert mta.message([member], sealed)[0] == GO_ON
        assert mta.message([member], [(b"Secure-Join", b"vc-request")])[0] == GO_ON
        assert mta.message([member], [(b"Secure-Join", b"vc-auth-required")])[0] == REFUSED
        assert mta.message([member], [])[0] == REFUSED  # no Content-Type: plain text
        mta.send(b"Q")
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
    assert not path.exists(), "the filter removes its socket when it stops"


def test_the_submission_ports_use_the_filter_only_in_encrypted_only_mode():
    on = postfix_master(MailSettings(enabled=True, domain="box.test", encrypted_only=True))
    off = postfix_master(MailSettings(enabled=True, domain="box.test"))
    assert b"milter.sock" not in off
    options, service = {}, None
    for line in on.decode().splitlines()[1:]:
        if line.startswith(" "):
            options[service].append(line.strip())
        else:
            service = " ".join(line.split()[:2])
            options[service] = []
    milter = (
        "-o smtpd_milters=unix:/run/commonsbox-mailfilter/milter.sock,"
        "unix:/run/opendkim/opendkim.sock"
    )
    assert sorted(s for s, o in options.items() if milter in o) == [
        "submission inet",
        "submissions inet",
    ]  # not port 25: the world's mail is not its


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
