"""Small helpers the VM tests share."""

import json
import os
import time
from contextlib import contextmanager


def wait_for(what, timeout: float = 90):
    """WHAT's first truthy answer, asked once a second (the guest answers; nothing sleeps
    in its place)."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(1)
    return found


@contextmanager
def phone_namespace(net: str):
    """A phone: a network namespace cabled to this machine (NET.1 here, NET.2 there),
    from where the guest's forwarded ports are reached as from the Internet."""
    from cblab.netns import Netns, run

    ns = Netns(f"cbvm-phone-{os.getpid()}")
    host_if = f"cbvmh{os.getpid() % 100000}"
    try:
        run(
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns.name]
        )
        run(["ip", "addr", "add", f"{net}.1/30", "dev", host_if])
        run(["ip", "link", "set", host_if, "up"])
        ns.run(["ip", "addr", "add", f"{net}.2/30", "dev", "eth0"])
        ns.run(["ip", "link", "set", "eth0", "up"])
        yield ns
    finally:
        ns.delete()  # takes the veth pair with it


def cli(vm, *args, timeout=900):
    answer = vm.run(["commonsbox", *args, "--json"], timeout=timeout)
    assert answer.rc == 0, answer.stderr
    return json.loads(answer.stdout)


def fetch(vm, url: str, name: str) -> str:
    path = f"/var/lib/commonsbox/update/{name}"
    script = (
        "import os, urllib.request as u; os.makedirs('/var/lib/commonsbox/update', exist_ok=True); "
        f"u.urlretrieve({url!r}, {path!r})"
    )
    vm.run(["python3", "-c", script], timeout=600, check=True)
    return path


def after_restart(vm, version: str, timeout: float = 1500) -> dict:
    """The box's update status once it restarted into VERSION and its gate has judged."""

    def settled():
        vm.channel = None  # the guest restarted: its end of the channel is new
        try:
            status = cli(vm, "update", "status", timeout=30)
        except Exception:  # still restarting
            time.sleep(5)
            return None
        done = status["version"] == version and not status["trial"]
        return status if done else None

    return wait_for(settled, timeout)
