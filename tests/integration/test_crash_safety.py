"""SIGKILL the agent at random moments while it applies changes: every time, the store
still holds a valid revision and the restarted agent converges the system to it."""

import random
import signal
import socket
import sqlite3
import threading
import time

import pytest

from appliance.api.client import Client
from appliance.errors import ApplianceError


def peers_on_the_interface(lab) -> set[str]:
    """Ask wireguard-go directly (not through the agent) which peers wg0 has."""
    import base64

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(lab.box.paths.root / "run/wireguard/wg0.sock"))
        s.sendall(b"get=1\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            data += s.recv(65536)
    return {
        base64.b64encode(bytes.fromhex(line.split("=", 1)[1])).decode()
        for line in data.decode().splitlines()
        if line.startswith("public_key=")
    }


def churn(lab, stop: threading.Event, rng: random.Random) -> None:
    """Change the desired state as fast as the agent allows, until it dies."""
    api = Client(lab.box.paths.socket, timeout=10)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            devices = api.call("vpn.device.list")
            roll = rng.random()
            if roll < 0.45 or not devices:
                api.call(
                    "vpn.device.add",
                    name=f"d{rng.getrandbits(40)}",
                    preshared_key=rng.random() < 0.5,
                    mode=rng.choice(["home", "full"]),
                )
            elif roll < 0.7:
                api.call("vpn.device.remove", device=rng.choice(devices)["id"])
            elif roll < 0.85:
                api.call(
                    "vpn.device.update",
                    device=rng.choice(devices)["id"],
                    mode=rng.choice(["home", "full"]),
                )
            else:
                history = api.call("config.history", limit=10)
                api.call("config.rollback", revision=rng.choice(history)["revision"])
    except (ApplianceError, OSError):
        pass  # the agent was killed under us
    finally:
        api.close()


def run_trials(lab, trials: int, seed: int) -> None:
    rng = random.Random(seed)
    first = lab.api.call("vpn.settings.set", ipv4_subnet="10.80.0.0/16")["revision"]
    for trial in range(trials):
        stop = threading.Event()
        worker = threading.Thread(target=churn, args=(lab, stop, rng))
        worker.start()
        time.sleep(rng.uniform(0.0, 0.25))
        lab.box.stop(signal.SIGKILL)
        stop.set()
        worker.join(15)
        with sqlite3.connect(lab.box.paths.state_db) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        lab.api.close()
        lab.box.start()  # loads and validates the head revision, then reconciles
        status = lab.api.call("status")
        stuck = [o for o in status["last_reconcile"] if not o["converged"]]
        assert not stuck, (trial, stuck, status["revision"])
        assert not any(o["actions"] for o in lab.api.call("reconcile")), trial
        wanted = {d["public_key"] for d in lab.api.call("vpn.device.list")}
        assert peers_on_the_interface(lab) == wanted, trial
    made = lab.api.call("config.history", limit=1)[0]["revision"] - first
    assert made >= trials, f"only {made} changes in {trials} trials: the kills hit nothing"


def test_sigkill_while_applying_20_trials(box):
    run_trials(box, 20, seed=20)


@pytest.mark.slow
def test_sigkill_while_applying_200_trials(box):
    run_trials(box, 200, seed=200)
