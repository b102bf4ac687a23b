"""The box's clock under systemd in the guest: Debian's chrony unit with the image's
drop-in runs the agent's configuration, started with -s, as its own user, listening on
nothing; turning time off restarts it with no sources; and the time it saved on the data
partition is a floor: a clock set back before it is moved forward again when chronyd
starts. The guest has no Internet (QEMU's user network leads nowhere from here), so its
NTS servers are never reached: the NTS exchange itself is tested against stand-in servers
in tests/integration/test_clock.py."""

import ipaddress
import struct
import time

import pytest

from appliance.clock.capability import CONFIG
from appliance.clock.chrony import DRIFT, SERVERS, SOCKET
from cbvm.qmp import QMP

pytestmark = pytest.mark.vm


def show(vm, *properties: str) -> dict[str, str]:
    out = vm.run(["systemctl", "show", "chrony", *(f"-p{p}" for p in properties)], check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def sources(vm) -> str:
    return vm.run(["chronyc", "-h", SOCKET, "-c", "-N", "sources"], check=True).stdout


def test_chrony_runs_the_agent_s_configuration_as_its_own_user_and_listens_on_nothing(vm):
    vm.wait_active("chrony")
    unit = show(vm, "ExecStart", "MainPID", "NRestarts")
    assert "/usr/sbin/chronyd" in unit["ExecStart"] and f"-f {CONFIG}" in unit["ExecStart"]
    assert " -s " in unit["ExecStart"]  # the saved time as a floor
    assert vm.run(["ps", "-o", "user=", "-p", unit["MainPID"]]).stdout.split() == ["_chrony"]
    conf = vm.run(["cat", CONFIG], check=True).stdout
    assert all(f"server {s.host} iburst nts" in conf for s in SERVERS)
    held = vm.run(["ss", "-H", "-l", "-n", "-p", "-t", "-u"], check=True).stdout
    assert "chronyd" not in held, held
    # Its saved time is on the data partition, written by chronyd's own user.
    folder = DRIFT.rsplit("/", 1)[0]
    assert vm.run(["findmnt", "-n", "-o", "TARGET", "-T", folder]).stdout.split() == [
        "/var/lib/commonsbox"
    ]
    assert vm.run(["stat", "-c", "%U %a", folder]).stdout.split() == ["_chrony", "750"]
    # systemd-timesyncd is gone, and with it the Debian pool.
    assert vm.run(["systemctl", "cat", "systemd-timesyncd"]).rc != 0


def test_time_off_restarts_it_with_no_sources_and_the_saved_time_is_a_floor(vm):
    vm.run(["commonsbox", "clock", "set", "off"], check=True, timeout=120)
    try:
        assert "server " not in vm.run(["cat", CONFIG], check=True).stdout
        vm.wait_active("chrony")
        assert sources(vm) == ""
        # chronyd saves the time when it stops; started again with the clock set ten
        # minutes before that, it moves the clock forward to it (never back).
        done = vm.run(
            [
                "sh",
                "-c",
                f"systemctl stop chrony && saved=$(stat -c %Y {DRIFT}) && "
                'date -s "@$((saved - 600))" >/dev/null && systemctl start chrony && '
                'echo "$saved $(date +%s)"',
            ],
            check=True,
        )
        saved, now = map(int, done.stdout.split())
        assert saved <= now <= saved + 60, (saved, now)
        log = vm.run(["journalctl", "-b", "-u", "chrony", "-o", "cat", "--no-pager"]).stdout
        assert "System time restored from driftfile" in log
    finally:
        vm.run(["commonsbox", "clock", "set", "on"], check=True, timeout=120)
    assert all(f"server {s.host} iburst nts" in vm.run(["cat", CONFIG]).stdout for s in SERVERS)


def sent(pcap: bytes, mac: bytes = bytes.fromhex("525400123456")):
    """(destination, protocol, destination port, UDP payload) of each IP packet the
    guest's network card (QEMU's first, by its MAC address) sent, from an Ethernet
    capture (QEMU's filter-dump writes pcap)."""
    at = 24  # the file's header
    while at + 16 <= len(pcap):
        length = struct.unpack_from("<I", pcap, at + 8)[0]
        frame, at = pcap[at + 16 : at + 16 + length], at + 16 + length
        kind, ip = struct.unpack_from("!H", frame, 12)[0], frame[14:]
        if frame[6:12] != mac or kind not in (0x0800, 0x86DD):
            continue  # received, or ARP
        if kind == 0x0800:
            body, proto, dst = ip[(ip[0] & 15) * 4 :], ip[9], ipaddress.ip_address(ip[16:20])
        else:  # no extension headers in what the box sends
            body, proto, dst = ip[40:], ip[6], ipaddress.ip_address(ip[24:40])
        port = struct.unpack_from("!H", body, 2)[0] if proto in (6, 17) else None
        yield dst, proto, port, body[8:] if proto == 17 else b""


def question(dns: bytes) -> str:
    """The name a DNS query asks about."""
    labels, at = [], 12
    while dns[at]:
        labels.append(dns[at + 1 : at + 1 + dns[at]].decode())
        at += 1 + dns[at]
    return ".".join(labels)


def test_with_time_on_it_looks_up_its_time_servers_and_contacts_nothing_else(vm, tmp_path):
    """What the issue's capture of a fresh image found (Debian's NTP pool asked every few
    seconds, unauthenticated), captured again on the guest's network card: with time on,
    the box looks up its four NTS servers and sends nothing else beyond its own link. No
    server answers here (no Internet), so no key exchange follows: that is tested against
    stand-in servers in tests/integration/test_clock.py."""
    vm.run(["commonsbox", "clock", "set", "off"], check=True, timeout=120)
    capture = tmp_path / "box.pcap"
    qmp = QMP(vm.qmp_path)
    try:
        qmp.command(
            "object-add",
            **{"qom-type": "filter-dump", "id": "cap", "netdev": "net0", "file": str(capture)},
        )
        vm.run(["commonsbox", "clock", "set", "on"], check=True, timeout=120)
        time.sleep(30)
    finally:
        qmp.command("object-del", id="cap")
        qmp.close()
    outward = [
        p
        for p in sent(capture.read_bytes())
        if p[1] in (6, 17) and not (p[0].is_multicast or p[0].is_link_local)
    ]
    asked = {question(p[3]) for p in outward if p[1] == 17 and p[2] == 53}
    assert asked == {s.host for s in SERVERS}, asked
    assert all(p[1] == 17 and p[2] == 53 for p in outward), outward  # DNS only
