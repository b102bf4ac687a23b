"""The qemu-amd64 image, booted under QEMU, seen from outside as a household would."""

import json
import ssl
import urllib.request

import pytest

from appliance.tls import fingerprint

pytestmark = pytest.mark.vm


def test_the_agent_is_ready_and_uses_kernel_wireguard(vm):
    status = vm.status  # what `commonsbox status --json` answered in the guest
    assert status["backend"] == "kernel", status
    assert status["box"]["claimed"] is False
    again = json.loads(vm.run(["commonsbox", "status", "--json"], check=True).stdout)
    assert again["backend"] == "kernel"
    assert vm.run(["systemctl", "is-active", "commonsbox-agent", "commonsbox-webui"],
                  check=True).stdout.split() == ["active", "active"]


def test_no_failed_units(vm):
    answer = vm.run(["systemctl", "--failed", "--no-legend", "--plain", "--no-pager"])
    assert answer.rc == 0 and answer.stdout.strip() == "", answer.stdout


def test_the_web_ui_answers_over_tls_and_shows_the_box_unclaimed(vm, tmp_path):
    vm.wait_active("commonsbox-webui")
    cert = vm.run(["cat", "/etc/commonsbox/tls/webui.crt"], check=True).stdout
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
    pid = vm.run(["systemctl", "show", "-p", "MainPID", "--value", "commonsbox-webui"],
                 check=True).stdout.strip()
    uid = vm.run(["id", "-u", "commonsbox-web"], check=True).stdout.strip()
    proc = vm.run(["cat", f"/proc/{pid}/status"], check=True).stdout
    assert uid != "0" and f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in proc


def test_the_image_manifest_lists_its_packages_and_signs_and_verifies(image_dir, tmp_path):
    import subprocess
    import sys

    manifest = json.loads((image_dir / "manifest.json").read_text())
    assert manifest["board"] == "qemu-amd64" and len(manifest["sha256"]) == 64
    assert {"systemd", "wireguard-tools", "nftables", "python3-pyroute2"} <= manifest["packages"].keys()
    assert any(w.startswith("commonsbox-") for w in manifest["python_wheels"])

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "appliance.cli", "image", *args],
                              capture_output=True, text=True)
    key, pub = tmp_path / "signing.key", tmp_path / "signing.pub"
    assert cli("keygen", "--key", str(key), "--pub", str(pub)).returncode == 0
    copy = tmp_path / "manifest.json"  # the cache's files are hard links: sign a copy
    copy.write_bytes((image_dir / "manifest.json").read_bytes())
    (tmp_path / "disk.img").symlink_to(image_dir / "disk.img")
    assert cli("sign", str(copy), "--key", str(key)).returncode == 0
    verified = cli("verify", str(copy), "--pub", str(pub))
    assert verified.returncode == 0 and "verified: True" in verified.stdout, verified.stderr
    copy.write_text(copy.read_text().replace('"systemd"', '"systemd-evil"'))
    assert cli("verify", str(copy), "--pub", str(pub)).returncode == 2
