"""The household's state across versions, with the real agent: version N runs, version
N+1 (the same code plus a migration: next_version_agent.py) migrates the stores after
a snapshot, the household changes something, and version N comes back, as the old slot
does after a failed trial. It refuses the newer store, puts the snapshot back, starts,
has the household's state as before the update, and names the change it lost."""

import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from appliance.update import state

from .conftest import Lab, as_webui

PASS = "three unrelated words"
NEXT = "tests.integration.next_version_agent"
TODAY = "appliance.agent"


@pytest.fixture
def household(tmp_path):
    """A claimed box (ana, admin) with one device, as version N leaves it."""
    root = Path(tempfile.mkdtemp(prefix="cbt-upd-"))
    os.chmod(root, 0o755)  # the web UI's user reaches the agent's socket
    lab = Lab(tmp_path, phones=0, root=root, webui_user="nobody")
    code = lab.api.call("setup.code")["code"]
    as_webui(
        lab,
        f"""
ana = call("setup.claim", code={code!r}, address="192.0.2.9", language="pt",
           box_name="Casa", admin_name="ana", passphrase={PASS!r}, timezone="UTC")["session"]
call("vpn.device.add", ana, name="Ana's phone")
""",
    )
    yield lab
    lab.close()
    subprocess.run(["rm", "-rf", str(root)])


def run_as(lab, module: str) -> None:
    """Stop the agent and start the given version of it on the same root."""
    lab.api.close()
    lab.box.stop()
    lab.box.module = module
    lab.box.start()
    lab.api = lab.box.client()


def seen(lab) -> dict:
    """What the household sees: devices, members, the history's newest revision."""
    return {
        "devices": sorted(d["name"] for d in lab.api.call("vpn.device.list")),
        "users": sorted(u["name"] for u in lab.api.call("users.list")),
        "head": lab.api.call("config.history", limit=1)[0]["revision"],
        "name": lab.api.call("status")["box"]["name"],
    }


def version(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_a_failed_trial_of_the_next_version_gives_the_household_back_its_state(household):
    lab = household
    paths = lab.box.paths
    before = seen(lab)
    assert before["devices"] == ["Ana's phone"]

    run_as(lab, NEXT)  # the new slot boots: its agent snapshots, then migrates
    assert version(paths.state_db) == 2
    [taken] = (paths.state_dir / "update/snapshots").iterdir()
    assert taken.name == "state1-secrets1-runtime1-to-state2-secrets1-runtime1"
    assert seen(lab) == before  # the migrated store holds the same state
    # The household uses the box during the trial, as ana, from the web UI.
    results = as_webui(
        lab,
        f"""
ana = call("auth.login", name="ana", passphrase={PASS!r}, address="192.0.2.9")["session"]
call("vpn.device.add", ana, name="Ana's laptop")
""",
    )
    added = results[1][1]["ok"]["revision"]
    assert sorted(d["name"] for d in lab.api.call("vpn.device.list")) == [
        "Ana's laptop",
        "Ana's phone",
    ]

    run_as(lab, TODAY)  # the trial failed: the old slot's agent starts again
    log = lab.box.log.read_text()
    assert "the state store is at version 2, newer than this agent knows (up to 1)" in log
    assert "put back the snapshot" in log
    assert version(paths.state_db) == 1
    assert seen(lab) == before  # as before the update
    # ana's passphrase (a secret on the card) still works: the secrets came back too.
    again = as_webui(
        lab,
        f'call("auth.login", name="ana", passphrase={PASS!r}, address="192.0.2.9")',
    )
    assert "ok" in again[0][1]
    # What the trial changed is named, for the dashboard.
    [report] = state.reports(paths)
    assert report["reason"] == "newer_stores"
    assert [(r["revision"], r["who"], r["why"]) for r in report["lost_revisions"]] == [
        (added, "ana (admin)", "add device “Ana's laptop”")
    ]
    assert report["found"]["state"] == 2 and report["restored"]["state"] == 1
    assert "runtime" in report["changed"]  # ana's sign-in during the trial


def test_without_a_snapshot_the_old_agent_refuses_to_start_and_says_why(household):
    lab = household
    paths = lab.box.paths
    run_as(lab, NEXT)
    lab.api.close()
    lab.box.stop()
    subprocess.run(["rm", "-rf", str(paths.state_dir / "update/snapshots")], check=True)
    lab.box.module = TODAY
    with pytest.raises(RuntimeError, match="exited"):
        lab.box.start(timeout=60)
    log = lab.box.log.read_text()
    assert "the state store is at version 2, newer than this agent knows (up to 1)" in log
    assert "no snapshot" in log
    assert version(paths.state_db) == 2  # left as it was, for the newer version
