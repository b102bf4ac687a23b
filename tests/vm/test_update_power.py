"""Power cuts during an update (make test-slow): QEMU killed at a random moment while the
bundle is written, while the new slot boots for the first time, or while the gate marks
it good; after each the box must boot a good slot by itself, its agent answer, its
household's device still be there, and the update record say what became of the trial.

Each trial starts from the same prepared disk (version N, first boot done, a device
added, the N+1 bundle on the data partition). The kind of cut: SIGKILL of QEMU, which
loses what the guest had not written out (its page cache) but nothing the emulated
disk acknowledged (MACHINE-NOTES: the harsher cut of a card's own cache is not tried).
CB_POWER_CUTS sets the number of trials (default 30); CB_POWER_SEED the random seed.
"""

import json
import os
import random
import shutil
import time

import pytest

from .conftest import CARD_MIB
from .guest import after_restart, cli, fetch, in_background

pytestmark = [pytest.mark.vm, pytest.mark.slow]

TRIALS = int(os.environ.get("CB_POWER_CUTS", "30"))
SEED = int(os.environ.get("CB_POWER_SEED", str(int(time.time()))))
STAGES = ("writing the bundle", "first boot of the new slot", "marking it good")


@pytest.fixture(scope="module")
def prepared(image_dir, served, tmp_path_factory):
    from cbvm import VM

    vm = VM(image_dir, tmp_path_factory.mktemp("prepared"), card_mib=CARD_MIB)
    vm.start()
    try:
        vm.wait_ready()
        cli(vm, "vpn", "device", "add", "cut-phone")
        bundle = fetch(vm, f"{served}/next.raucb", "next.raucb")
        vm.run(["sync"], check=True)
    finally:
        vm.stop()
    return vm.work, bundle


def test_power_cuts_during_updates_never_leave_a_box_that_does_not_boot(
    image_dir,
    prepared,
    bundles,
    tmp_path_factory,
):
    from cbvm import VM, VMError

    base, bundle = prepared
    _, next_version, _ = bundles
    first_version = json.loads((image_dir / "image.json").read_text())["version"]
    rng = random.Random(SEED)
    print(f"POWER CUTS: {TRIALS} trials, seed {SEED}")
    outcomes, unbootable = [], []
    for trial in range(TRIALS):
        stage = rng.choice(STAGES)
        work = tmp_path_factory.mktemp(f"cut{trial}")
        for name in ("disk.qcow2", "efivars.fd"):
            shutil.copyfile(base / name, work / name)
        vm = VM(image_dir, work, card_mib=CARD_MIB)
        try:
            vm.start(fresh=False)
            vm.wait_ready()
            delay = cut(vm, stage, bundle, rng)
            vm.power_cut()
            vm.start(fresh=False)
            try:
                vm.wait_ready(900)
            except VMError:
                unbootable.append((trial, stage, delay))
                print(f"  trial {trial}: {stage}, cut after {delay:.1f} s: DID NOT BOOT")
                continue
            status = after_restart(vm, None, 1500)
            assert status["booted"] == status["primary"] and not status["in_trial"], status
            assert status["version"] in (first_version, next_version), status
            assert [d["name"] for d in cli(vm, "vpn", "device", "list")] == ["cut-phone"]
            outcome = status["history"][0]["outcome"] if status["history"] else "nothing armed"
            outcomes.append(outcome)
            print(
                f"  trial {trial}: {stage}, cut after {delay:.1f} s: boots {status['booted']} "
                f"(version {status['version']}), {outcome}"
            )
        finally:
            vm.power_cut()  # its disk is thrown away: no need to wait for a shutdown
            vm.cleanup()
    print(f"POWER CUTS: {TRIALS} trials, {len(unbootable)} unbootable; outcomes {outcomes}")
    assert unbootable == []


def cut(vm, stage: str, bundle: str, rng: random.Random) -> float:
    """Start the update and return when the plug is to be pulled (the seconds waited)."""
    if stage == "writing the bundle":
        in_background(vm, ["commonsbox", "update", "install", bundle, "--no-reboot"])
        delay = rng.uniform(0, 60)  # RAUC writes the slot in ~60 s under TCG
        time.sleep(delay)
        return delay
    cli(vm, "update", "install", bundle)
    if stage == "first boot of the new slot":
        delay = rng.uniform(0, 120)  # from the restart to the gate's first look
        time.sleep(delay)
        return delay
    t0 = time.monotonic()  # wait for the trial to be up, then cut within the gate's moment

    def trying():
        vm.channel = None
        try:
            return cli(vm, "update", "status", timeout=20)["in_trial"]
        except Exception:
            time.sleep(2)
            return False

    while not trying():
        if time.monotonic() - t0 > 900:
            break
    time.sleep(rng.uniform(0, 60))  # the gate looks for ~30-90 s under TCG, then marks
    return time.monotonic() - t0
