"""Going back to the previous version: only the version the other slot holds, and only if
the box ran it. After an update that was not kept, the other slot holds what failed, and
going back is refused with nothing armed. The boot backend is the real GRUB one on a
temporary EFI partition (test_update_gate.py's box), the gate the real one."""

import pytest

from appliance.errors import Invalid
from appliance.update import gate, record
from appliance.update.boot import grubenv
from appliance.update.boot.grub import ENV
from appliance.update.service import Updates

from .test_update_gate import HEALTH, box, probe, trial  # noqa: F401 (a fixture)

STATUS = {"health": HEALTH}


def run(backend, p) -> str:
    """The gate on this boot, its marks made as RAUC's would (through the backend)."""

    def rauc(verb: str) -> None:
        (backend.mark_good if verb == "mark-good" else backend.mark_bad)(backend.booted())

    t = [0.0]
    return gate.run(
        backend,
        p,
        log=lambda m: None,
        deadline=30.0,
        poll=10.0,
        clock=lambda: t[0],
        sleep=lambda s: t.__setitem__(0, t[0] + s),
        rauc=rauc,
    )


def service(backend, tmp_path):
    keyring = tmp_path / "keyring.pem"
    keyring.write_text("the update certificate")
    return Updates(backend=lambda: backend, keyring=keyring)


def test_after_a_kept_update_going_back_tries_the_version_before(box, tmp_path):  # noqa: F811
    backend, boot, reboots, before = box
    trial(backend, boot, before)  # 2026.12.07.1 on A -> 2026.12.07.2 on B
    assert run(backend, probe()) == "committed"
    updates = service(backend, tmp_path)
    assert updates.status()["previous"] == "2026.12.07.1"
    assert updates.rollback(STATUS) == {"version": "2026.12.07.1", "slot": "A", "reboot": True}
    assert record.read()["trial"]["slot"] == "A"
    assert grubenv.read(tmp_path / "esp" / ENV)["TRIAL"] == "A"


def test_after_an_update_that_was_not_kept_there_is_nothing_to_go_back_to(box, tmp_path):  # noqa: F811
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    assert run(backend, probe()) == "committed"  # 2026.12.07.2 kept on B
    record.armed("A", "2026.12.07.3", before)  # the next one, written into A
    backend.set_primary("A")
    boot("A")
    assert run(backend, probe(webui=False)) == "rolled back"
    boot("B")  # back on 2026.12.07.2; A holds the 2026.12.07.3 that failed
    updates = service(backend, tmp_path)
    env = grubenv.read(tmp_path / "esp" / ENV)
    with pytest.raises(Invalid) as refused:
        updates.rollback(STATUS)
    assert refused.value.field == "update_previous"
    assert grubenv.read(tmp_path / "esp" / ENV) == env
    assert "trial" not in record.read()
    assert updates.status()["previous"] is None


def test_while_an_update_waits_for_a_restart_there_is_nothing_to_go_back_to(box, tmp_path):  # noqa: F811
    backend, boot, reboots, before = box
    trial(backend, boot, before)
    assert run(backend, probe()) == "committed"
    record.armed("A", "2026.12.07.3", before)  # installed with --no-reboot: A holds it
    assert service(backend, tmp_path).status()["previous"] is None
