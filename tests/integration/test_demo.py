"""`make demo`'s status loop, against a sandboxed agent that restarts under it."""

import threading

from appliance.api.client import Client
from cblab.demo import watch

from .conftest import wait_until


def test_the_demo_keeps_printing_when_its_agent_restarts(box):
    device = box.api.call("vpn.device.add", name="Demo phone")["device"]
    lines: list[str] = []
    stop = threading.Event()
    api = Client(box.box.paths.socket, timeout=10)
    loop = threading.Thread(
        target=watch,
        args=(api, device["id"]),
        kwargs={"every": 0.2, "out": lines.append, "stop": stop},
    )
    loop.start()
    try:
        assert wait_until(lambda: any("Demo phone: handshake never" in line for line in lines), 10)
        box.restart_agent()
        assert wait_until(lambda: any("the agent restarted" in line for line in lines), 20), lines
        after = next(i for i, line in enumerate(lines) if "the agent restarted" in line)
        assert wait_until(
            lambda: any("Demo phone: handshake" in line for line in lines[after:]), 10
        )
        assert loop.is_alive()
    finally:
        stop.set()
        loop.join(10)
        api.close()
    assert not loop.is_alive()
