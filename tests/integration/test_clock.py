"""The box's clock with the chronyd the box ships (Debian 13's, from the image recipe's own
root file system), run by the real agent from the configuration it renders: time only from
NTS servers, never from one alone, no server role, and nothing asked while the household
has turned time off; the settings page names what the box contacts and turns it off.

There is no Internet here, so the public NTS servers cannot be asked: a real exchange with
them cannot be tested. What stands in for them is chronyd itself as an NTS server (the
same Debian 13 root, in the lab's "Internet" namespace, on addresses of its own, one
process per server): the box's /etc/hosts points the configured servers' names there, and
its CA bundle trusts the throwaway CA that signed the stand-ins' certificates (one
stand-in's certificate is signed by a CA the box does not trust). Everything on the box's
side is its own: the configuration, the NTS key exchange over TLS, the authenticated NTP
packets, the selection that needs two sources to agree. The box's chronyd runs with -x
here (it shares this machine's clock): it tracks the time but never sets this machine's
clock; on the box systemd starts it with -s (tests/vm/test_clock.py).
"""

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.clock import chrony
from appliance.clock.capability import CONFIG
from cblab.boxroot import BoxRoot, tree

from .conftest import BASE, household_box, logged_in, post, text

# One "Internet" address per configured server: A answers with a trusted certificate, B
# with one the box does not trust, C (trusted) comes up later, D never answers.
ADDRESSES = ("203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14")
SETTINGS = {
    "box_name": "Home",
    "language": "en",
    "timezone": "UTC",
    "endpoint_host": "192.0.2.1",
    "endpoint_port": "51820",
    "devices_per_member": "20",
    "keep": "500",
}


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC) - timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_cert(ca, hosts) -> tuple[bytes, bytes]:
    """A certificate for HOSTS signed by CA, with its chain, and its key (PEM)."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC) - timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return (
        cert.public_bytes(pem) + ca_cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


class StandIns:
    """chronyd as the public NTS servers, one process per address, in the Internet's
    namespace (its own Debian 13 root)."""

    def __init__(self, world, work: Path):
        self.world = world
        self.root = BoxRoot(world.inet, tree(), work, "time.test")
        self.system = self.root.start()
        hosts = [s.host for s in chrony.SERVERS]
        self.trusted = _ca("Stand-in time CA")
        other = _ca("A CA nobody trusts")
        for i, address in enumerate(ADDRESSES):
            world.inet.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
            cert, key = _server_cert(other if i == 1 else self.trusted, hosts)
            self.system.write(f"/etc/standin/{i}.crt", cert)
            self.system.write(
                f"/etc/standin/{i}.key", key, 0o640, self.system.ids("root", "_chrony")
            )
            self.system.write(
                f"/etc/standin/{i}.conf",
                "".join(
                    line + "\n"
                    for line in (
                        f"bindaddress {address}",
                        "local stratum 1",  # its own clock: this machine's
                        "allow all",
                        f"ntsserverkey /etc/standin/{i}.key",
                        f"ntsservercert /etc/standin/{i}.crt",
                        "cmdport 0",
                        f"bindcmdaddress /run/standin-{i}/chronyd.sock",
                        f"pidfile /run/standin-{i}/chronyd.pid",
                    )
                ).encode(),
            )

    def start(self, i: int) -> None:
        self.system.run(
            ["chronyd", "-4", "-x", "-f", f"/etc/standin/{i}.conf", "-l", f"/tmp/standin-{i}.log"],
            daemon=True,
        )

    def stop(self) -> None:
        self.root.stop()


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with household_box("cbk", "clock.test") as world:
        # Time off first, so that chronyd starts afresh (and resolves the names the test
        # gives it) when a test turns it on.
        world.api.call("box.settings.set", time_sync=False)
        stand_ins = StandIns(world, tmp_path_factory.mktemp("standins"))
        system = world.box_root.system()
        hosts = "".join(f"{a} {s.host}\n" for a, s in zip(ADDRESSES, chrony.SERVERS, strict=True))
        system.write("/etc/hosts", system.read("/etc/hosts") + hosts.encode())
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        ca_pem = stand_ins.trusted[1].public_bytes(serialization.Encoding.PEM)
        system.write(bundle, system.read(bundle) + ca_pem)
        world.stand_ins, world.system = stand_ins, system
        try:
            yield world
        finally:
            stand_ins.stop()


def chronyc(box, *args: str) -> list[list[str]]:
    """chronyc in the box, through chronyd's Unix socket (its only command channel), as CSV."""
    out = box.system.run(["chronyc", "-h", chrony.SOCKET, "-c", "-N", *args]).stdout
    return [line.split(",") for line in out.splitlines()]


def sources(box) -> dict[str, int]:
    """Each source chronyd has, by the name configured: its reach (the last 8 polls)."""
    return {row[2]: int(row[5], 8) for row in chronyc(box, "sources")}


def synchronised(box) -> bool:
    return chronyc(box, "tracking")[0][-1] == "Normal"


def until(what, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (found := what()):
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.25)
    return found


def listening(box) -> list[str]:
    """The sockets anything in the box's network namespace listens on (TCP and UDP)."""
    out = box.box_ns.run(["ss", "-H", "-l", "-n", "-p", "-t", "-u"]).stdout
    return out.splitlines()


def chronyd_running(box) -> bool:
    pid = (box.system.read("/run/chrony/chronyd.pid") or b"").strip()
    return pid.isdigit() and Path(f"/proc/{box.box_root.pid}/root/proc/{pid.decode()}").exists()


def test_with_time_off_the_box_asks_no_one_and_listens_on_nothing(box):
    status = box.api.call("status")
    assert status["box"]["time_sync"] is False  # the fixture's change, through the API
    assert box.api.call("config.history", limit=1)[0]["why"] == "change box settings: time_sync"
    conf = box.system.read(CONFIG).decode()
    assert "server " not in conf and "port 0" in conf
    assert chronyd_running(box)  # it still runs: it keeps the saved time
    assert chronyc(box, "sources") == []
    assert not synchronised(box)
    assert [line for line in listening(box) if "chronyd" in line] == []
    assert box.api.call("clock.status")["time_sync"] is False


def test_one_authenticated_server_alone_does_not_set_the_clock(box):
    box.stand_ins.start(0)  # trusted
    box.stand_ins.start(1)  # a certificate the box does not trust
    said = box.api.call("box.settings.set", time_sync=True)
    assert said["applied"], said
    assert "nts" in box.system.read(CONFIG).decode()
    first, second = (s.host for s in chrony.SERVERS[:2])
    until(lambda: bin(sources(box).get(first, 0)).count("1") >= 4)  # four authenticated answers
    seen = sources(box)
    assert seen[second] == 0  # its key exchange failed: its answers count for nothing
    auth = {row[0]: row for row in chronyc(box, "authdata")}
    assert auth[first][1] == "NTS" and int(auth[first][8]) > 0  # cookies from NTS-KE
    assert auth[second][1] == "NTS" and int(auth[second][8]) == 0
    assert not synchronised(box)  # minsources 2: one server cannot move the clock
    assert box.api.call("clock.status")["synchronised"] is False


def test_two_agreeing_nts_servers_set_it_and_it_serves_no_one(box):
    box.stand_ins.start(2)
    # Turned off and on again: chronyd starts afresh and asks every server at once.
    box.api.call("box.settings.set", time_sync=False)
    box.api.call("box.settings.set", time_sync=True)
    until(lambda: synchronised(box))
    tracking = chronyc(box, "tracking")[0]
    third = chrony.SERVERS[2].host
    assert tracking[1] in (chrony.SERVERS[0].host, third)
    selected = {row[2]: row[1] for row in chronyc(box, "sources")}
    assert sorted(selected[h] for h in (chrony.SERVERS[0].host, third)) == ["*", "+"]
    auth = {row[0]: row for row in chronyc(box, "authdata")}
    assert all(auth[h][1] == "NTS" for h in selected)
    shown = box.api.call("clock.status")
    assert shown["synchronised"] is True and shown["source"] == tracking[1]
    # A client only: no NTP server port, no command port, nothing listening at all.
    held = [line for line in listening(box) if "chronyd" in line or re.search(r":123\b", line)]
    assert held == []


def test_the_settings_page_names_what_the_box_contacts_and_turns_each_off(app, box):
    ana = logged_in(app, "ana")
    page = " ".join(text(ana.get("/settings", base_url=BASE)).split())
    assert "What the box contacts by itself" in page
    for server in chrony.SERVERS:
        assert server.host in page and server.operator in page
    assert "Network Time Security (NTS)" in page and "at least two must agree" in page
    assert "the box asks its update feed over HTTPS" in page
    assert "Nothing else leaves the box unless you turn it on" in page
    assert 'id="time_sync" name="time_sync" type="checkbox" value="1" checked' in page
    assert 'id="update_check" name="update_check" type="checkbox" value="1" checked' in page
    assert "Now: synchronised with " in page and "Now: off." not in page

    saved = post(ana, "/settings", {**SETTINGS, "contacts": "1"}, "/settings")  # both unticked
    assert saved.status_code == 302, text(saved)
    assert {"time_sync": False, "update_check": False}.items() <= box.api.call("status")[
        "box"
    ].items()
    assert "server " not in box.system.read(CONFIG).decode()
    assert chronyc(box, "sources") == []
    page = " ".join(text(ana.get("/settings", base_url=BASE)).split())
    assert "Now: off. The clock runs on its own and drifts" in page
    assert "checked" not in page.split('id="time_sync"')[1].split(">")[0]

    saved = post(
        ana,
        "/settings",
        {**SETTINGS, "contacts": "1", "time_sync": "1", "update_check": "1"},
        "/settings",
    )
    assert saved.status_code == 302
    box_settings = box.api.call("status")["box"]
    assert "time_sync" not in box_settings and "update_check" not in box_settings  # on again
    until(lambda: set(sources(box)) == {s.host for s in chrony.SERVERS})
    # A form from before these switches existed (no "contacts") changes neither.
    post(ana, "/settings", SETTINGS, "/settings")
    assert "time_sync" not in box.api.call("status")["box"]
