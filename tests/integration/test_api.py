"""The privileged API against the real agent: bad input gets a clear error and the
stored state stays exactly as it was."""

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.api import MAX_REQUEST
from appliance.api.methods import load
from appliance.errors import Conflict, Invalid, NotFound, PoolExhausted
from appliance.vpn import keys
from cblab.sandbox import REPO

from .conftest import Lab


def snapshot(lab):
    return lab.api.call("config.history", limit=1)[0]["revision"], lab.api.call("vpn.device.list")


def raw(lab, payload: bytes) -> list[dict]:
    """Send bytes on a fresh connection; return every answer until the agent closes."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(lab.box.paths.socket))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


BAD_NAMES = [
    "phone\nPrivateKey = AAAA",
    "phone\r\n[Peer]",
    "ph\x00one",
    "\x1b[31mred",
    "a" * 10_000,
    "",
    " padded",
    "evil\u202eenohp",
    "line\u2028sep",
    "tab\tname",
]


def test_bad_device_names_are_refused_and_nothing_is_stored(box):
    before = snapshot(box)
    for name in BAD_NAMES:
        with pytest.raises(Invalid) as err:
            box.api.call("vpn.device.add", name=name)
        assert err.value.field == "name", name
    assert snapshot(box) == before


def test_live_devices_as_a_table_of_the_columns_asked_for(box):
    """A page that shows five of a row's ten fields asks for those, as a table."""
    for name in ("laptop", "phone", "tablet"):
        box.api.call("vpn.device.add", name=name)
    columns = ["name", "id", "rx_bytes"]
    table = box.api.call("vpn.device.live", offset=1, limit=5, columns=columns)
    full = box.api.call("vpn.device.live", offset=1, limit=5)
    assert table == {
        "total": 3,
        "rows": [[d["name"], d["id"], d["rx_bytes"]] for d in full["devices"]],
    }
    assert [row[0] for row in table["rows"]] == ["phone", "tablet"]
    for bad in ([], ["name", "private_key"], [["name"]], "name"):
        with pytest.raises(Invalid) as err:
            box.api.call("vpn.device.live", columns=bad)
        assert err.value.field == "columns", bad


@pytest.mark.parametrize(
    "name",
    [
        'Grandma\'s "new" phone',
        "Phone [Peer]",
        "[Interface]",
        "هاتف جدتي",
        "दादी का फ़ोन",
        "Zoë 📱",
        "a" * 64,
    ],
)
def test_names_with_quotes_brackets_and_any_script_round_trip(box, name):
    device = box.api.call("vpn.device.add", name=name)["device"]
    assert device["name"] == name
    assert box.api.call("vpn.device.get", device=device["id"])["name"] == name
    assert box.api.call("vpn.device.get", device=name)["id"] == device["id"]
    config = box.api.call("vpn.device.config", device=device["id"])["config"]
    lines = [line for line in config.splitlines() if line]
    assert lines[0] == "[Interface]" and lines.count("[Peer]") == 1 and len(lines) == 7
    assert {line.split(" = ")[0] for line in lines if " = " in line} == {
        "PrivateKey",
        "Address",
        "PublicKey",
        "AllowedIPs",
        "Endpoint",
    }


def test_invalid_and_duplicate_public_keys(box):
    own = keys.public_key(keys.new_private_key())
    box.api.call("vpn.device.add", name="laptop", public_key=own)
    before = snapshot(box)
    for bad in ["nope", own[:-1], "A" * 43 + "=", own + "\n", own.replace("=", "A")]:
        with pytest.raises(Invalid) as err:
            box.api.call("vpn.device.add", name="x", public_key=bad)
        assert err.value.field == "public_key"
    with pytest.raises(Conflict):
        box.api.call("vpn.device.add", name="copy", public_key=own)
    box_key = box.api.call("vpn.settings.get")["public_key"]
    with pytest.raises(Conflict):
        box.api.call("vpn.device.add", name="box", public_key=box_key)
    with pytest.raises(Conflict):
        box.api.call("vpn.device.add", name="LAPTOP")
    assert snapshot(box) == before


def test_an_exhausted_address_pool(box):
    box.api.call("vpn.settings.set", ipv4_subnet="10.78.0.0/29")
    for i in range(5):
        box.api.call("vpn.device.add", name=f"device {i}")
    before = snapshot(box)
    with pytest.raises(PoolExhausted):
        box.api.call("vpn.device.add", name="one too many")
    assert snapshot(box) == before


def test_malformed_oversized_and_mistyped_requests(box):
    before = snapshot(box)
    answers = raw(
        box,
        b"{not json\n\xff\xfe\n[1, 2]\n"
        + b"[" * 40000
        + b"\n"
        + b'{"method": 5}\n{"method": "vpn.device.add", "params": {"name": 5}}\n'
        + b'{"method": "vpn.device.add", "params": {"name": "x", "colour": "red"}}\n'
        + b'{"method": "vpn.device.add", "params": {"name": "x", "preshared_key": 1}}\n'
        + b'{"method": "config.rollback", "params": {"revision": true}}\n'
        + b'{"method": "vpn.device.add", "params": []}\n'
        + b'{"method": "status"}\n',
    )
    codes = [a["error"]["code"] if not a["ok"] else "ok" for a in answers]
    assert codes == [
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "not_found",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "ok",
    ], answers
    assert [a["error"].get("field") for a in answers[5:9]] == [
        "name",
        "colour",
        "preshared_key",
        "revision",
    ]
    # Over the limit: a clear error, then the agent hangs up.
    answers = raw(
        box,
        b'{"method": "vpn.device.add", "params": {"name": "'
        + b"a" * (MAX_REQUEST + 10)
        + b'"}}\n{"method": "status"}\n',
    )
    assert [a["error"]["code"] for a in answers] == ["too_large"]
    with pytest.raises(NotFound):
        box.api.call("config.rollback", revision=9999)
    assert snapshot(box) == before


def _call_as(lab, uid: int, gid: int, method: str, session=None, **params):
    code = (
        "import json, sys; from appliance.api.client import Client\n"
        "from appliance.errors import ApplianceError\n"
        f"c = Client({str(lab.box.paths.socket)!r}, session={session!r})\n"
        "try: print(json.dumps({'ok': c.call(sys.argv[1], **json.loads(sys.argv[2]))}))\n"
        "except ApplianceError as e: print(json.dumps({'error': e.code}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, method, json.dumps(params)],
        user=uid,
        group=gid,
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_only_root_and_the_web_ui_user_may_call(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="cbt-api-"))  # others must reach the socket to be refused
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    try:
        sock = lab.box.paths.socket
        assert oct(sock.stat().st_mode & 0o777) == "0o660" and sock.stat().st_gid == 65534
        before = snapshot(lab)
        assert _call_as(lab, 12345, 65534, "vpn.device.add", name="intruder") == {
            "error": "unauthorized"
        }
        assert snapshot(lab) == before
        # The web UI's user gets in, but acts only through a household member's session.
        assert _call_as(lab, 65534, 65534, "vpn.device.add", name="x") == {"error": "forbidden"}
        code = lab.api.call("setup.code")["code"]
        # the box's own login prompts show the code while it is unclaimed, to root only
        issue = root / "run/issue.d/commonsbox.issue"
        assert f"setup code  {code}" in issue.read_text() and "https://\\4/" in issue.read_text()
        assert oct(issue.stat().st_mode & 0o777) == "0o600"
        claim = _call_as(
            lab,
            65534,
            65534,
            "setup.claim",
            code=code,
            address="192.0.2.9",
            language="pt",
            box_name="Casa",
            admin_name="ana",
            passphrase="three unrelated words",
            timezone="Europe/Lisbon",
        )
        session = claim["ok"]["session"]
        assert not issue.exists()
        assert _call_as(lab, 65534, 65534, "vpn.device.add", name="x") == {"error": "unauthorized"}
        added = _call_as(lab, 65534, 65534, "vpn.device.add", session, name="from the web UI")
        assert added["ok"]["device"]["owner"] == "ana"
        assert lab.api.call("config.history", limit=1)[0]["who"] == "ana (admin)"
    finally:
        lab.close()
        subprocess.run(["rm", "-rf", str(root)])


def test_the_hardware_service_user_may_read_status_and_ask_for_the_reset_only(tmp_path):
    """The hardware service runs as its own user (here `daemon`, uid 1): it may read what
    the display and LEDs show and ask for the button's factory reset, nothing else."""
    root = Path(tempfile.mkdtemp(prefix="cbt-hw-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    try:
        lab.box.extra_args = ["--hardware-user", "daemon"]
        lab.restart_agent()
        lab.api = lab.box.client()

        def hw(method, **params):
            return _call_as(lab, 1, 65534, method, **params)

        assert hw("setup.status")["ok"]["claimed"] is False
        code = lab.api.call("setup.code")["code"]
        assert hw("setup.code") == {
            "ok": {"code": code, "expires": hw("setup.code")["ok"]["expires"]}
        }
        for refused in (
            ("setup.code", {"renew": True}),  # the display shows the code; it never renews it
            (
                "setup.claim",
                {
                    "code": code,
                    "address": "192.0.2.9",
                    "admin_name": "eve",
                    "passphrase": "three unrelated words",
                },
            ),
            ("auth.login", {"name": "ana", "passphrase": "three unrelated words"}),
            ("users.list", {}),
            ("vpn.device.add", {"name": "intruder"}),
            ("config.history", {}),
        ):
            assert hw(refused[0], **refused[1]) == {"error": "forbidden"}, refused
        assert lab.api.call("setup.code")["code"] == code
        lab.api.call(
            "setup.claim",
            code=code,
            address="192.0.2.9",
            language="en",
            box_name="Casa",
            admin_name="ana",
            passphrase="three unrelated words",
            timezone="UTC",
        )
        lab.api.call("vpn.device.add", name="ana's phone")
        status = hw("status")["ok"]
        assert status["health"] and status["vpn"]["devices"] == []  # no one's devices
        assert hw("rollback", revision=1) == {"error": "not_found"}
        assert hw("config.rollback", revision=1) == {"error": "forbidden"}
        assert lab.api.call("setup.status")["claimed"] is True
        assert hw("box.factory_reset") == {"ok": {"claimed": False}}
        assert lab.api.call("setup.status")["claimed"] is False
    finally:
        lab.close()
        subprocess.run(["rm", "-rf", str(root)])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(sorted(load()) + ["nope"]),
    params=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "device",
                "mode",
                "dns",
                "public_key",
                "revision",
                "a",
                "b",
                "limit",
                "endpoint",
                "ipv4_subnet",
                "listen_port",
                "why",
                "x",
            ]
        ),
        JSON,
        max_size=4,
    ),
)
def test_random_requests_never_crash_the_agent(box, method, params):
    answer = raw(box, json.dumps({"method": method, "params": params}).encode() + b"\n")[0]
    assert answer["ok"] or answer["error"]["code"] != "error", answer


def test_a_call_also_says_whose_the_session_is_when_asked(tmp_path):
    """The web UI learns who the member is with a page's first call ("whoami": true), not
    with a round trip of its own; an ended session is null there, and the call itself is
    decided for that caller as ever."""
    root = Path(tempfile.mkdtemp(prefix="cbt-api-"))
    os.chmod(root, 0o755)
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    try:
        ask = {"method": "vpn.device.live", "params": {}, "whoami": True}
        unclaimed = _lines_as_webui(lab, [{**ask, "session": "none yet"}])
        assert unclaimed == [{"ok": False, "error": unclaimed[0]["error"], "whoami": None}]
        assert unclaimed[0]["error"]["code"] == "forbidden"
        session = lab.api.call(
            "setup.claim",
            code=lab.api.call("setup.code")["code"],
            address="192.0.2.9",
            language="pt",
            box_name="Casa",
            admin_name="ana",
            passphrase="three unrelated words",
            timezone="Europe/Lisbon",
        )["session"]
        live, plain, ended, public = _lines_as_webui(
            lab,
            [
                {**ask, "session": session},
                {"method": "vpn.device.live", "params": {}, "session": session},
                {**ask, "session": "x" * 43},
                {"method": "setup.status", "params": {}, "session": "x" * 43, "whoami": True},
            ],
        )
        assert live["ok"] and live["result"] == {"total": 0, "devices": []}
        who = live["whoami"]
        assert (who["name"], who["role"], who["language"]) == ("ana", "admin", "pt")
        assert plain["ok"] and "whoami" not in plain  # only when asked
        assert ended["error"]["code"] == "unauthorized" and ended["whoami"] is None
        assert public["ok"] and public["result"]["claimed"] and public["whoami"] is None
    finally:
        lab.close()
        subprocess.run(["rm", "-rf", str(root)])


def _lines_as_webui(lab, requests: list[dict]) -> list[dict]:
    """Send REQUESTS on one connection as the web UI's user (nobody); their answers."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        os.setegid(65534)
        os.seteuid(65534)
        try:
            s.connect(str(lab.box.paths.socket))
        finally:
            os.seteuid(0)
            os.setegid(0)
        s.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]
