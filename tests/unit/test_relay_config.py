"""The relay's planners and renderers as data: what the agent would do, and what it
would write, for given facts and settings (no daemons here; the integration tier runs
them)."""

import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from appliance.chat.render import Inputs as ChatInputs
from appliance.chat.render import render as render_chat
from appliance.chat.schema import ChatSettings
from appliance.daemonconfig import (
    Facts,
    File,
    Prepare,
    Reload,
    Start,
    Stop,
    Write,
    plan,
    until_the_next_second,
    write_seen_by_mtime,
)
from appliance.errors import Invalid
from appliance.mail.render import Inputs, hash_app_password, render
from appliance.mail.schema import AppPassword, MailSettings, Smarthost
from appliance.mail.service import client_settings
from appliance.storage.place import KEYS
from appliance.system import System

DAEMONS = ("opendkim", "dovecot", "postfix")


def readers(path):
    return {
        "/etc/postfix/main.cf": ("postfix",),
        "/etc/dovecot/dovecot.conf": ("dovecot",),
        "/etc/dovecot/commonsbox/users": (),
    }.get(path, ())


def facts(files, running=DAEMONS, ready=True):
    return Facts(files=files, running={d: d in running for d in DAEMONS}, ready=ready)


WANTED = {
    "/etc/postfix/main.cf": ("a", 0o644, 0, 0),
    "/etc/dovecot/dovecot.conf": ("b", 0o644, 0, 0),
    "/etc/dovecot/commonsbox/users": ("c", 0o640, 0, 106),
}


def test_nothing_to_do_when_files_match_and_daemons_run():
    assert plan(facts(dict(WANTED)), True, WANTED, DAEMONS, readers, "p") == []


def test_a_first_start_prepares_writes_everything_and_starts_in_order():
    actions = plan(facts({}, running=(), ready=False), True, WANTED, DAEMONS, readers, "p")
    assert actions == [
        Prepare("p"),
        Write(tuple(sorted(WANTED))),
        Start("opendkim"),
        Start("dovecot"),
        Start("postfix"),
    ]


def test_a_changed_config_reloads_only_its_daemon():
    current = dict(WANTED, **{"/etc/postfix/main.cf": ("old", 0o644, 0, 0)})
    assert plan(facts(current), True, WANTED, DAEMONS, readers, "p") == [
        Write(("/etc/postfix/main.cf",)),
        Reload("postfix"),
    ]


def test_a_file_read_at_each_login_is_written_without_a_reload():
    current = dict(WANTED, **{"/etc/dovecot/commonsbox/users": None})
    assert plan(facts(current), True, WANTED, DAEMONS, readers, "p") == [
        Write(("/etc/dovecot/commonsbox/users",))
    ]


def test_a_wrong_mode_or_owner_is_a_change_too():
    current = dict(WANTED, **{"/etc/dovecot/commonsbox/users": ("c", 0o644, 0, 0)})
    assert Write(("/etc/dovecot/commonsbox/users",)) in plan(
        facts(current), True, WANTED, DAEMONS, readers, "p"
    )


def test_a_same_size_rewrite_within_a_second_still_changes_the_whole_second_mtime(tmp_path):
    # Dovecot's passwd-file reloads when the mtime (whole seconds) or the size changes:
    # one password swapped for another of the same length, in the same second, must show.
    system, ids = System(root=tmp_path), (os.getuid(), os.getgid())
    mtimes = []
    for secret in (b"alice:{SSHA512}aaaa\n", b"alice:{SSHA512}bbbb\n", b"alice:{SSHA512}cccc\n"):
        write_seen_by_mtime(system, "/etc/dovecot/commonsbox/users", File(secret, 0o640), ids)
        written = tmp_path / "etc/dovecot/commonsbox/users"
        assert written.read_bytes() == secret and written.stat().st_mode & 0o777 == 0o640
        mtimes.append(int(written.stat().st_mtime))
    assert mtimes[0] < mtimes[1] < mtimes[2]


def test_waiting_for_a_once_a_second_reader_ends_in_the_next_second():
    for _ in range(3):
        before = time.time()
        until_the_next_second()
        after = time.time()
        assert int(before) + 1 <= after < before + 1.5  # at most one second, and no more


def test_turning_off_stops_what_runs_in_reverse_order():
    assert plan(facts(dict(WANTED)), False, {}, DAEMONS, readers, "p") == [
        Stop("postfix"),
        Stop("dovecot"),
        Stop("opendkim"),
    ]
    assert plan(facts({}, running=()), False, {}, DAEMONS, readers, "p") == []


def inputs(**kw):
    base = dict(
        users=("alice", "bob"),
        password_hashes={("alice", 1): "{SSHA512}aGFzaA=="},
        dkim_selector="cb0123456789",
        dkim_key_pem="KEY",
        tls_key_pem="TK",
        tls_cert_pem="TC",
        log_dir=None,
    )
    return Inputs(**{**base, **kw})


SETTINGS = MailSettings(
    enabled=True,
    domain="example.org",
    max_message_mib=10,
    app_passwords=(AppPassword(1, "alice", "phone", 1),),
)


def test_mail_files_name_the_domain_users_and_limits():
    files = render(SETTINGS, inputs())
    main = files["/etc/postfix/main.cf"].data.decode()
    assert "virtual_mailbox_domains = example.org\n" in main
    assert f"message_size_limit = {10 * 1024 * 1024}\n" in main
    assert "reject_unauth_destination" in main and "maillog_file" not in main
    assert (
        files["/etc/postfix/commonsbox/mailboxes"].data
        == b"alice@example.org OK\nbob@example.org OK\n"
    )
    assert files[f"{KEYS}/mail/passwords/1"].data == b"alice@example.org:{SSHA512}aGFzaA==\n"
    assert files[f"{KEYS}/mail/passwords/2"].data == b""
    assert files[f"{KEYS}/mail/dkim/example.org.private"].mode == 0o600
    assert files[f"{KEYS}/mail/tls.key"].mode == 0o600
    cleanup = files["/etc/postfix/commonsbox/submission_header_cleanup"].data
    assert b"/^Received:/ IGNORE" in cleanup


def test_a_smarthost_is_used_with_tls_required_and_its_password_kept_0600():
    s = MailSettings(
        enabled=True, domain="example.org", smarthost=Smarthost("smtp.provider.example", 587, "me")
    )
    files = render(s, inputs(smarthost_password="pa ss:word"))
    main = files["/etc/postfix/main.cf"].data.decode()
    assert "relayhost = [smtp.provider.example]:587\n" in main
    assert "smtp_tls_security_level = encrypt\n" in main
    table = files[f"{KEYS}/mail/smarthost"]
    assert table.mode == 0o600 and table.data == b"[smtp.provider.example]:587 me:pa ss:word\n"


@pytest.mark.parametrize("bad", ["x\nrelayhost = evil", "x\r", "x\x00"])
def test_no_value_with_a_line_break_or_control_character_reaches_a_file(bad):
    with pytest.raises(Invalid):
        render(SETTINGS, inputs(smarthost_password=bad, dkim_selector=bad))


def test_app_password_hashes_are_salted_dovecot_ssha512():
    one, two = hash_app_password("pw", b"salt-one"), hash_app_password("pw", b"salt-two")
    assert one.startswith("{SSHA512}") and one != two


def test_the_delta_chat_login_carries_the_servers():
    c = client_settings("example.org", "alice@example.org", "secret pw", chat=True)
    link = urlsplit(c["dclogin"])
    assert link.scheme == "dclogin" and link.path == "alice@example.org"
    q = {k: v[0] for k, v in parse_qs(link.query).items()}
    assert q == {
        "v": "1",
        "p": "secret pw",
        "ih": "example.org",
        "ip": "993",
        "is": "ssl",
        "sh": "example.org",
        "sp": "465",
        "ss": "ssl",
        "ic": "3",
        "sc": "3",
    }
    assert c["xmpp"]["jid"] == "alice@example.org"


def test_chat_config_enables_what_omemo_clients_need_and_no_registration():
    files = render_chat(
        ChatSettings(enabled=True, archive_days=3),
        SETTINGS,
        ChatInputs(
            users=("alice",),
            password_hashes={("alice", 1): "{SSHA512}x", ("gone", 1): "{SSHA512}y"},
            tls_key_pem="K",
            tls_cert_pem="C",
            log_dir=None,
        ),
    )
    cfg = files["/etc/prosody/prosody.cfg.lua"].data.decode()
    for module in ("pep", "carbons", "mam", "smacks", "cloud_notify"):
        assert f'"{module}"' in cfg
    assert "allow_registration = false" in cfg and 'archive_expires_after = "3d"' in cfg
    assert 'Component "upload.example.org" "http_file_share"' in cfg
    assert "unbound" not in cfg  # only a .test domain asks the test network's DNS
    assert files[f"{KEYS}/chat/auth/passwords"].data == b"alice:{SSHA512}x\n"


def test_autoconfig_tells_mail_apps_the_servers_and_escapes_the_box_name():
    import xml.etree.ElementTree as ET

    from appliance.mail.autoconfig import autoconfig_xml

    doc = ET.fromstring(autoconfig_xml("example.org", 'Our <home> & "box"'))
    provider = doc.find("emailProvider")
    assert provider.get("id") == "example.org"
    assert provider.findtext("displayName") == 'Our <home> & "box"'
    incoming, outgoing = provider.find("incomingServer"), provider.find("outgoingServer")
    assert (incoming.get("type"), incoming.findtext("port"), incoming.findtext("socketType")) == (
        "imap",
        "993",
        "SSL",
    )
    assert (outgoing.get("type"), outgoing.findtext("port")) == ("smtp", "465")
    assert incoming.findtext("username") == "%EMAILADDRESS%"
