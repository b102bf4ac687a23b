"""The health gate: a trial slot is kept only when what worked before works again, given
up (and the box restarted) at the deadline otherwise; a trial that never reached the gate
is named. The boot backend is the real GRUB one on a temp EFI partition."""

import contextlib

import pytest

from appliance.errors import ApplianceError
from appliance.update import gate, record
from appliance.update.boot import grubenv
from appliance.update.boot.grub import ENV, GrubBackend

HEALTH = [
    {"capability": "vpn", "name": "interface", "ok": True},
    {"capability": "storage", "name": "encryption", "ok": True},
    {"capability": "mail", "name": "postfix", "ok": True},
]
UNITS = {"commonsbox-webui.service": False, "postfix.service": True}


@pytest.fixture
def box(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "DIR", tmp_path / "update")
    release = tmp_path / "release.json"
    release.write_text('{"version": "2026.12.07.1"}')
    monkeypatch.setattr(record, "RELEASE", release)
    (tmp_path / "esp" / ENV).parent.mkdir(parents=True)
    grubenv.write(tmp_path / "esp" / ENV, {"PRIMARY": "A", "TRIAL": ""})
    cmdline = tmp_path / "cmdline"
    reboots = []
    backend = GrubBackend(
        tmp_path / "esp", cmdline, lambda: reboots.append(1), contextlib.nullcontext
    )

    def boot(slot):
        cmdline.write_text(f"root=x rauc.slot={slot}")

    boot("A")
    monkeypatch.setattr(gate, "active", lambda units: set(units))
    before = gate.before_update({"health": HEALTH}, UNITS)
    return backend, boot, reboots, before


def probe(health=HEALTH, units=None, webui=True, agent=True, restarts=0):
    def status():
        if not agent:
            raise ApplianceError("cannot reach the agent")
        return {"health": health}

    return gate.Probe(
        status=status,
        active_units=lambda asked: set(asked) if units is None else set(units) & set(asked),
        webui_answers=lambda: webui,
        agent_restarts=lambda: restarts,
    )


def trial(backend, boot, before):
    record.armed("B", "2026.12.07.2", before)
    backend.set_primary("B")
    boot("B")


def run(backend, p, marks, deadline=30.0):
    t = [0.0]
    return gate.run(
        backend,
        p,
        log=lambda m: None,
        deadline=deadline,
        poll=10.0,
        clock=lambda: t[0],
        sleep=lambda s: t.__setitem__(0, t[0] + s),
        rauc=marks.append,
    )


def test_a_healthy_trial_is_kept_and_said(box):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    marks = []
    assert run(backend, probe(), marks) == "committed"
    assert marks == ["mark-good"] and reboots == []
    last = record.read()["history"][0]
    assert (last["version"], last["from"], last["outcome"]) == (
        "2026.12.07.2",
        "2026.12.07.1",
        "committed",
    )


@pytest.mark.parametrize(
    "broken, said",
    [
        (dict(agent=False), "the agent does not answer"),
        (dict(webui=False), "the web UI does not answer"),
        (
            dict(health=[dict(HEALTH[0], ok=False), *HEALTH[1:]]),
            "health check failing: vpn: interface",
        ),
        (dict(units=["postfix.service"]), "not running: commonsbox-webui.service"),
    ],
    ids=["agent", "webui", "vpn", "unit"],
)
def test_an_unhealthy_trial_is_given_up_at_the_deadline_and_the_box_restarts(box, broken, said):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    marks = []
    assert run(backend, probe(**broken), marks) == "rolled back"
    assert marks == ["mark-bad"] and reboots == [1]
    last = record.read()["history"][0]
    assert last["outcome"] == "rolled back" and any(lost.startswith(said) for lost in last["lost"])
    assert "trial" not in record.read()


def test_an_agent_that_systemd_restarted_again_and_again_is_given_up_before_the_deadline(box):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    looks = []  # systemd restarted it once more each time the gate looks
    p = probe(agent=False)
    p.agent_restarts = lambda: looks.append(1) or len(looks) - 1
    marks = []
    assert run(backend, p, marks, deadline=3600.0) == "rolled back"
    assert marks == ["mark-bad"] and reboots == [1]
    assert len(looks) == gate.RESTARTS + 1  # not for an hour
    lost = record.read()["history"][0]["lost"]
    assert lost[-1] == f"the agent stopped each of the {gate.RESTARTS + 1} times it was started"


def test_an_agent_restarted_once_is_waited_for(box):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    answers = iter([False, False, True])  # it answers the third time the gate asks

    def status():
        if not next(answers):
            raise ApplianceError("cannot reach the agent")
        return {"health": HEALTH}

    p = probe(restarts=1)
    p.status = status
    marks = []
    assert run(backend, p, marks) == "committed" and marks == ["mark-good"]


def test_locked_storage_after_the_restart_does_not_fail_the_trial(box):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    locked = [HEALTH[0], dict(HEALTH[1], ok=False), dict(HEALTH[2], ok=False)]
    marks = []
    assert (
        run(backend, probe(health=locked, units=["commonsbox-webui.service"]), marks) == "committed"
    )


def test_unlocked_storage_must_bring_back_what_ran_on_it(box):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    marks = []
    assert run(backend, probe(units=["commonsbox-webui.service"]), marks) == "rolled back"
    assert "not running: postfix.service" in record.read()["history"][0]["lost"]


def test_a_trial_that_never_reached_the_gate_is_named_on_the_old_slot(box):
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    boot("A")  # the new kernel panicked: GRUB had cleared TRIAL, PRIMARY booted
    marks = []
    assert run(backend, probe(), marks) == "fell back"
    assert marks == [] and reboots == []
    assert record.read()["history"][0]["outcome"] == "fell back"


def test_an_ordinary_boot_changes_nothing(box):
    backend, boot, reboots, before = box
    assert run(backend, probe(agent=False), []) == "steady"
    assert record.read() == {}
