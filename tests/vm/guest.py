"""Small helpers the VM tests share."""

import time


def wait_for(what, timeout: float = 90):
    """WHAT's first truthy answer, asked once a second (the guest answers; nothing sleeps
    in its place)."""
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(1)
    return found
