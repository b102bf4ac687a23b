"""The qemu-amd64 image, booted under QEMU, seen from outside as a household would."""

import ipaddress
import json
import shlex
import ssl
import subprocess
import time
import urllib.request

import pytest

from appliance.tls import fingerprint

from .guest import phone_namespace

pytestmark = pytest.mark.vm


def test_the_agent_is_ready_and_uses_kernel_wireguard(vm):
    status = vm.status  # what `commonsbox status --json` answered in the guest
    assert status["backend"] == "kernel", status
    assert status["box"]["claimed"] is False
    again = json.loads(vm.run(["commonsbox", "status", "--json"], check=True).stdout)
    assert again["backend"] == "kernel"
    assert vm.run(
        ["systemctl", "is-active", "commonsbox-agent", "commonsbox-webui"], check=True
    ).stdout.split() == ["active", "active"]


def test_no_failed_units(vm):
    answer = vm.run(["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"])
    assert answer.rc == 0 and answer.stdout.strip() == "", answer.stdout


def test_the_web_ui_answers_over_tls_and_shows_the_box_unclaimed(vm, tmp_path):
    vm.wait_active("commonsbox-webui")
    cert = vm.run(["cat", "/var/lib/commonsbox/tls/webui.crt"], check=True).stdout
    # the certificate the browser will see is the one the agent vouches for
    assert fingerprint(cert.encode()) == vm.status["webui"]["tls_sha256"]
    (tmp_path / "webui.crt").write_text(cert)
    context = ssl.create_default_context(cafile=str(tmp_path / "webui.crt"))
    context.check_hostname = False  # the forwarded port is 127.0.0.1, the cert names the box
    url = f"https://127.0.0.1:{vm.webui_port}"
    answer = urllib.request.urlopen(f"{url}/setup", context=context, timeout=60)
    body = answer.read().decode()
    assert answer.status == 200 and answer.headers["Server"] == "commonsbox"
    assert "Set up this box" in body and "Setup code" in body


def test_the_web_ui_runs_unprivileged(vm):
    pid = vm.run(
        ["systemctl", "show", "-p", "MainPID", "--value", "commonsbox-webui"], check=True
    ).stdout.strip()
    uid = vm.run(["id", "-u", "commonsbox-web"], check=True).stdout.strip()
    proc = vm.run(["cat", f"/proc/{pid}/status"], check=True).stdout
    assert uid != "0" and f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in proc


def test_the_image_manifest_lists_its_packages_and_signs_and_verifies(image_dir, tmp_path):
    import subprocess
    import sys

    manifest = json.loads((image_dir / "manifest.json").read_text())
    assert manifest["board"] == "qemu-amd64" and len(manifest["sha256"]) == 64
    assert {"systemd", "wireguard-tools", "nftables", "python3-pyroute2"} <= manifest[
        "packages"
    ].keys()
    assert any(w.startswith("commonsbox-") for w in manifest["python_wheels"])

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "appliance.cli", "image", *args], capture_output=True, text=True
        )

    key, pub = tmp_path / "signing.key", tmp_path / "signing.pub"
    assert cli("keygen", "--key", str(key), "--pub", str(pub)).returncode == 0
    copy = tmp_path / "manifest.json"  # the cache's files are hard links: sign a copy
    copy.write_bytes((image_dir / "manifest.json").read_bytes())
    (tmp_path / "disk.img").symlink_to(image_dir / "disk.img")
    assert manifest["test_image"] is True  # the VM tier boots the test image
    refused = cli("sign", str(copy), "--key", str(key))
    assert refused.returncode == 2 and "refusing to sign a TEST image" in refused.stderr
    assert cli("sign", str(copy), "--key", str(key), "--test-image").returncode == 0
    verified = cli("verify", str(copy), "--pub", str(pub))
    assert verified.returncode == 0 and "verified: True" in verified.stdout, verified.stderr
    assert "test_image: True" in verified.stdout and "TEST image" in verified.stdout
    copy.write_text(copy.read_text().replace('"systemd"', '"systemd-evil"'))
    assert cli("verify", str(copy), "--pub", str(pub)).returncode == 2


def test_first_boot_gave_the_card_to_data_and_made_root_b(vm):
    from .conftest import CARD_MIB

    listing = vm.run(["lsblk", "-bnrpo", "PARTLABEL,SIZE", "/dev/vda"], check=True).stdout
    sizes = {
        label: int(size)
        for label, size in (line.split() for line in listing.splitlines() if len(line.split()) == 2)
    }
    assert sizes.keys() == {"boot", "rootA", "data", "rootB"}, listing
    assert sizes["rootB"] == sizes["rootA"]
    free = CARD_MIB * 2**20 - sum(sizes.values())
    assert 0 <= free < 4 * 2**20, sizes  # nothing left over but alignment and the GPT
    df = vm.run(["df", "-B1", "--output=size", "/var/lib/commonsbox"], check=True).stdout
    assert int(df.split()[-1]) > 0.9 * sizes["data"]  # the file system grew with it
    grown = vm.run(["journalctl", "-b", "-u", "commonsbox-grow", "--no-pager", "-o", "cat"]).stdout
    assert "grown to" in grown, grown


def _listeners(vm) -> set[str]:
    """proto/port of every socket listening on an address reachable from outside."""
    found = set()
    for line in vm.run(["ss", "-Htuln"], check=True).stdout.splitlines():
        proto, _, _, _, local, *_ = line.split()
        address, _, port = local.rpartition(":")
        address = address.split("%")[0].strip("[]")
        if address not in ("127.0.0.1", "::1") and not address.startswith("127."):
            found.add(f"{proto}/{port}")
    return found


def test_nothing_listens_outside_that_the_firewall_does_not_open(vm):
    open_ports = set(vm.status["firewall"]["open_ports"])
    assert vm.status["firewall"]["home_ports"] == []  # no installer's key: no SSH
    listening = _listeners(vm)
    assert {"tcp/443", "udp/51820"} <= listening  # the web UI and kernel WireGuard
    assert listening <= open_ports, listening - open_ports
    chain = vm.run(["nft", "list", "chain", "inet", "commonsbox", "input"], check=True).stdout
    assert "policy drop;" in chain


def test_mail_and_chat_run_under_systemd_and_their_ports_are_the_firewalls(vm):
    """The relay's systemd path (the namespace tests run the daemons without an init)."""
    relay = ["postfix", "dovecot", "opendkim", "commonsbox-mailfilter", "prosody"]
    vm.run(["commonsbox", "storage", "unencrypted", "on"], check=True)
    vm.run(
        ["commonsbox", "mail", "set", "on", "--domain", "box.test", "--encrypted-only", "on"],
        check=True,
        timeout=300,
    )
    vm.run(["commonsbox", "chat", "set", "on"], check=True, timeout=300)
    try:
        active = vm.run(["systemctl", "is-active", *relay]).stdout.split()
        assert active == ["active"] * len(relay), dict(zip(relay, active, strict=False))
        status = json.loads(vm.run(["commonsbox", "status", "--json"], check=True).stdout)
        # Each tells systemd when its ports are open (Prosody through the image's drop-in):
        # once `set on` has returned, a client can connect.
        assert vm.run(["systemctl", "show", "-P", "Type", "prosody"]).stdout.split() == ["notify"]
        listening = _listeners(vm)
        assert {"tcp/25", "tcp/587", "tcp/993", "tcp/5222", "tcp/5269"} <= listening, listening
        assert listening <= set(status["firewall"]["open_ports"])
        socket_dir = vm.run(
            ["stat", "-c", "%U:%G %a", "/run/commonsbox-mailfilter"], check=True
        ).stdout.split()
        assert socket_dir == ["cbmilter:postfix", "750"]
    finally:
        vm.run(["commonsbox", "chat", "set", "off"], check=True, timeout=300)
        vm.run(["commonsbox", "mail", "set", "off"], check=True, timeout=300)
        vm.run(["commonsbox", "storage", "unencrypted", "off"], check=True)
    assert vm.run(["systemctl", "is-active", *relay]).stdout.split() == ["inactive"] * len(relay)


def test_logs_are_kept_in_memory_and_short(vm):
    journald = vm.run(["systemd-analyze", "cat-config", "systemd/journald.conf"], check=True).stdout
    assert "Storage=volatile" in journald and "MaxRetentionSec=2day" in journald
    on_card = vm.run(["find", "/var/log/journal", "-type", "f"]).stdout.split()
    assert on_card == [], "nothing is logged to the card"
    assert vm.run(["find", "/run/log/journal", "-name", "*.journal"], check=True).stdout.strip()


@pytest.fixture
def phone_ns():
    with phone_namespace(PHONE_NET) as ns:
        yield ns


PHONE_NET = "10.254.77"  # the cable between this machine and the phone's namespace


def test_a_phone_connects_to_the_guests_kernel_wireguard_and_pings_the_box(vm, phone_ns, tmp_path):
    """As a household would: the box's address set, a device added, its config taken to
    the phone, which comes up with wg-quick (here: wireguard-go) and reaches the box."""
    from cblab.sandbox import Phone

    port = vm.wireguard_port
    vm.forward("udp", f"{PHONE_NET}.1", port, 51820)
    vm.run(["commonsbox", "vpn", "set", "--endpoint", f"{PHONE_NET}.1:{port}"], check=True)
    added = json.loads(
        vm.run(["commonsbox", "vpn", "device", "add", "vm-phone", "--json"], check=True).stdout
    )
    config = vm.run(
        ["commonsbox", "vpn", "device", "show", str(added["device"]["id"])], check=True
    ).stdout
    phone = Phone(phone_ns, "cbvmwg0", tmp_path)
    phone.up(config)
    box_ip = str(ipaddress.ip_network(vm.status["vpn"]["ipv4_subnet"])[1])
    assert phone_ns.ping(box_ip, count=3, timeout=5), phone_ns.run(["wg", "show"]).stdout
    assert phone.latest_handshake() > 0
    devices = json.loads(
        vm.run(["commonsbox", "vpn", "device", "list", "--json"], check=True).stdout
    )
    assert [d["latest_handshake"] > 0 for d in devices if d["name"] == "vm-phone"] == [True]


def test_an_installers_key_turns_ssh_on_for_root_and_removing_it_turns_it_off(vm, tmp_path):
    """Debian's sshd never runs; the agent starts its own instance under systemd while a
    key is set, and QEMU's user network is a home network (10.0.2.0/24) to the box."""
    assert vm.run(["systemctl", "is-enabled", "ssh.service"]).stdout.strip() == "disabled"
    assert not {"tcp/22", "tcp/2222"} & _listeners(vm)
    key = tmp_path / "installer"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ines@laptop", "-f", key], check=True
    )
    pub = (tmp_path / "installer.pub").read_text().strip()
    vm.run(["sh", "-c", f"echo {shlex.quote(pub)} > /root/ines.pub"], check=True)
    vm.run(["commonsbox", "ssh", "add", "/root/ines.pub"], check=True, timeout=180)
    access = json.loads(vm.run(["commonsbox", "ssh", "list", "--json"], check=True).stdout)
    status = json.loads(vm.run(["commonsbox", "status", "--json"], check=True).stdout)
    assert status["firewall"]["home_ports"] == ["tcp/2222"]
    assert vm.run(["systemctl", "is-active", "commonsbox-ssh"]).stdout.strip() == "active"
    assert _listeners(vm) <= set(status["firewall"]["open_ports"] + ["tcp/2222"])

    port = vm.ssh_port  # forwarded to the guest's 2222 from QEMU's start
    known = tmp_path / "known_hosts"

    def ssh(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "ssh",
                "-p",
                str(port),
                "-i",
                key,
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "ConnectTimeout=30",
                "root@127.0.0.1",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = ssh("id -u; systemctl is-active commonsbox-agent")
    assert done.returncode == 0 and done.stdout.split() == ["0", "active"], done.stderr
    seen = subprocess.run(
        ["ssh-keygen", "-lf", known], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert seen == access["host_key"]  # what the installer is shown to compare

    vm.run(
        ["commonsbox", "ssh", "remove", access["keys"][0]["fingerprint"]], check=True, timeout=180
    )
    assert vm.run(["systemctl", "is-active", "commonsbox-ssh"]).stdout.strip() == "inactive"
    assert ssh("true").returncode == 255


def test_the_boxs_console_shows_how_to_set_it_up(vm):
    """No keyboard, no SSH: the login prompt on the screen and the serial console shows
    the address and the one-time setup code while the box is unclaimed."""
    code = json.loads(vm.run(["commonsbox", "setup-code", "--json"], check=True).stdout)["code"]
    deadline = time.monotonic() + 60
    while f"setup code  {code}" not in vm.console_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, vm.tail()
        time.sleep(0.5)  # reading the console's log, which QEMU writes as it comes
    assert "https://10.0.2.15/" in vm.console_log.read_text(errors="replace")  # agetty's \4
