"""`commonsbox`, the command line, against the real agent in its namespace."""

import json
import os
import re
import shutil
import subprocess
import sys


def cli(lab, *args, ok=True):
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--root", str(lab.box.paths.root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_a_device_from_add_to_qr_code_to_rollback(box, tmp_path):
    out = cli(box, "vpn", "device", "add", "Grandma's phone", "--psk").stdout
    assert "saved as revision" in out and "device 1 (Grandma's phone): 10.77.0.2" in out
    assert "Grandma's phone" in cli(box, "vpn", "device", "list").stdout

    shown = cli(box, "vpn", "device", "show", "Grandma's phone")
    assert shown.stdout.startswith("[Interface]\nPrivateKey = ") and "PresharedKey" in shown.stdout
    assert "Grandma-s-pho-1.conf" in shown.stderr

    qr = cli(box, "vpn", "device", "show", "1", "--qr", "--png", str(tmp_path / "qr.png")).stdout
    assert "█" in qr or "▀" in qr
    if shutil.which("zbarimg"):
        decoded = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sbinary", str(tmp_path / "qr.png")],
            capture_output=True,
            text=True,
        )
        assert decoded.stdout.rstrip("\n") == shown.stdout.rstrip("\n")

    status = json.loads(cli(box, "status", "--json").stdout)
    assert status["vpn"]["devices"][0]["name"] == "Grandma's phone"
    assert status["backend"] in ("kernel", "userspace")
    assert all(c["ok"] for c in status["health"]), status["health"]
    text = cli(box, "status").stdout
    assert "Grandma's phone" in text and "handshake never" in text

    cli(box, "vpn", "device", "remove", "1", "--why", "lost on the bus")
    history = cli(box, "config", "history").stdout.splitlines()
    assert "lost on the bus" in history[0] and "root" in history[0]
    revisions = json.loads(cli(box, "config", "history", "--json").stdout)
    latest = revisions[0]["revision"]
    diff = cli(box, "config", "diff", str(latest - 1), str(latest)).stdout
    assert '-        "name": "Grandma\'s phone",' in diff
    assert "PrivateKey" not in diff and "psk" not in diff.lower()

    cli(box, "config", "rollback", str(latest - 1))
    assert "Grandma's phone" in cli(box, "vpn", "device", "list").stdout


def test_errors_are_one_clear_line_and_a_nonzero_exit(box):
    bad = cli(box, "vpn", "device", "add", "bad\nname", ok=False)
    assert bad.returncode == 2 and bad.stderr.startswith("commonsbox: name contains a control")
    missing = cli(box, "vpn", "device", "remove", "nobody", ok=False)
    assert missing.returncode == 2 and "there is no device 'nobody'" in missing.stderr
    as_json = cli(box, "vpn", "device", "show", "nobody", "--json", ok=False)
    assert json.loads(as_json.stderr)["error"]["code"] == "not_found"


def test_the_endpoint_is_written_into_every_config(box):
    cli(box, "vpn", "set", "--endpoint", "home.example.org:41000")
    cli(box, "vpn", "device", "add", "tablet")
    assert "Endpoint = home.example.org:41000" in cli(box, "vpn", "device", "show", "tablet").stdout
    cli(box, "vpn", "set", "--endpoint", "[2001:db8::7]")
    assert "Endpoint = [2001:db8::7]:51820" in cli(box, "vpn", "device", "show", "tablet").stdout


def test_no_agent_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--root", str(tmp_path), "status"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "cannot reach the agent" in done.stderr


def test_json_before_the_command_is_honoured(box):
    out = cli(box, "--json", "status").stdout
    assert json.loads(out)["box"]["name"] == "Commonsbox"


def test_a_reader_that_went_away_ends_the_command_quietly(box):
    box.api.call("vpn.device.add", name="tablet")
    read, write = os.pipe()
    os.close(read)  # `commonsbox status | head -1`: head has read its line and gone
    with os.fdopen(write, "w") as closed_pipe:
        done = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "--root", str(box.box.paths.root), "status"],
            stdout=closed_pipe,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.stderr == ""
    assert done.returncode != 0


def _claimed(box) -> None:
    code = box.api.call("setup.code")["code"]
    box.api.call(
        "setup.claim",
        code=code,
        address="192.168.1.20",
        language="en",
        box_name="Home",
        admin_name="ana",
        passphrase="three unrelated words",
        timezone="UTC",
    )


def cli_with_input(lab, text: str, *args):
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--root", str(lab.box.paths.root), *args],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_member_is_made_from_the_command_line_with_a_passphrase_never_in_argv(box):
    _claimed(box)
    made = cli_with_input(
        box, "correct horse battery staple\n", "users", "add", "bo", "--role", "admin"
    )
    assert made.returncode == 0, made.stderr
    assert "saved as revision" in made.stdout
    users = {u["name"]: u for u in box.api.call("users.list")}
    assert users["bo"]["role"] == "admin"
    login = box.api.call(
        "auth.login", name="bo", passphrase="correct horse battery staple", address="192.168.1.21"
    )
    assert login["user"]["name"] == "bo"
    listed = cli(box, "users", "list").stdout
    assert "bo" in listed and "admin" in listed
    # A passphrase on the command line would be in every `ps` and the shell's history.
    refused = cli(box, "users", "add", "cy", "--passphrase", "x y z w", ok=False)
    assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr
    empty = cli_with_input(box, "", "users", "add", "cy")
    assert empty.returncode == 2 and "passphrase" in empty.stderr
    assert "cy" not in {u["name"] for u in box.api.call("users.list")}


def test_an_invitation_from_the_command_line_is_a_link_and_a_qr_code(box):
    _claimed(box)
    box.api.call("vpn.settings.set", endpoint={"host": "home.example.org", "port": 51820})
    out = cli(box, "users", "invite", "dee", "--role", "admin").stdout
    link = re.search(r"https://home\.example\.org/join/(\S+)", out)
    assert link, out
    assert "█" in out or "▀" in out
    found = box.api.call("users.invitation", token=link.group(1))
    assert (found["name"], found["role"]) == ("dee", "admin")
    there = cli(box, "users", "invite", "eve", "--address", "192.168.1.2:8443").stdout
    assert "https://192.168.1.2:8443/join/" in there
    for bad in ("evil.example/phish?", "home.example.org:0", "two words"):
        refused = cli(box, "users", "invite", "gus", "--address", bad, ok=False)
        assert refused.returncode == 2 and "is not a HOST or HOST:PORT" in refused.stderr
    as_json = json.loads(cli(box, "--json", "users", "invite", "fay").stdout)
    assert as_json["url"].startswith("https://home.example.org/join/") and as_json["qr"]


def test_history_is_kept_to_a_count_with_pins_and_members_have_a_device_limit(box):
    assert "500" in cli(box, "config", "keep").stdout
    first = json.loads(cli(box, "config", "history", "--json").stdout)[-1]["revision"]
    assert f"revision {first} is pinned" in cli(box, "config", "pin", str(first)).stdout
    cli(box, "config", "keep", "10")
    for i in range(11):
        cli(box, "vpn", "device", "add", f"laptop {i}")
    kept = json.loads(cli(box, "config", "history", "--json", "--limit", "100").stdout)
    assert len(kept) == 11 and kept[-1]["revision"] == first and kept[-1]["pinned"]
    assert "pinned" in cli(box, "config", "history").stdout.splitlines()[-1]
    cli(box, "config", "unpin", str(first))
    assert len(json.loads(cli(box, "config", "history", "--json").stdout)) == 10
    refused = cli(box, "config", "keep", "3", ok=False)
    assert refused.returncode == 2 and "keep" in refused.stderr

    cli(box, "vpn", "set", "--devices-per-member", "3")
    assert box.api.call("vpn.settings.get")["devices_per_member"] == 3
