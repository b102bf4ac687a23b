"""The agent's idle memory: pyroute2 (22 MB of it) only for the kernel backend."""

import subprocess
import sys

PROBE = """
import sys
import appliance.agent
from appliance.vpn.backends import detect
backend = detect("userspace", {"kernel_wireguard": False, "wireguard_go": True})
print(backend.kind, "pyroute2" in sys.modules)
"""


def test_the_userspace_backend_runs_without_importing_pyroute2():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["userspace", "False"], done.stdout + done.stderr
