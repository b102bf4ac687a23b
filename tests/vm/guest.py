"""Small helpers the VM tests share."""

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
