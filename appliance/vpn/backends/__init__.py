"""WireGuard backends: one interface, two real implementations.

kernel     the kernel module, over generic netlink (pyroute2): what the box runs
userspace  wireguard-go, over its UAPI socket: machines whose kernel lacks WireGuard

``detect()`` tries the kernel first by creating (and deleting) a probe interface; it
never assumes.
"""

import os
import shutil
import subprocess
from typing import Protocol

from ...secrets import Secret
from ..facts import Interface
from ..plan import WantedPeer


class Backend(Protocol):
    kind: str

    def read(self, name: str) -> Interface | None: ...

    def create(self, name: str) -> None: ...

    def configure(self, name: str, private_key: Secret, listen_port: int) -> None: ...

    def set_peers(
        self, name: str, upserts: tuple[WantedPeer, ...], removals: tuple[str, ...]
    ) -> None: ...


def kernel_available() -> bool:
    """Whether the kernel makes a WireGuard link (loading its module if need be), asked
    of `ip` rather than pyroute2: importing that costs the agent 22 MB, which only the
    kernel backend needs (it imports it itself)."""
    probe = f"cbprobe{os.getpid() % 100000}"
    made = subprocess.run(
        ["ip", "link", "add", probe, "type", "wireguard"], capture_output=True, check=False
    )
    if made.returncode != 0:
        return False
    subprocess.run(["ip", "link", "del", probe], capture_output=True, check=False)
    return True


def userspace_available() -> bool:
    return shutil.which("wireguard-go") is not None


def probe() -> dict[str, bool]:
    """What this machine offers, as shown by `commonsbox status`."""
    return {
        "kernel_wireguard": kernel_available(),
        "wireguard_go": userspace_available(),
        "nftables": shutil.which("nft") is not None,
    }


def detect(choice: str, found: dict[str, bool], log_dir=None) -> Backend:
    """The backend to use: ``kernel``, ``userspace`` or ``auto`` (kernel if it works)."""
    if choice == "kernel" or (choice == "auto" and found["kernel_wireguard"]):
        from .kernel import KernelBackend  # pyroute2, 22 MB: only for this backend

        return KernelBackend()
    if choice == "userspace" or (choice == "auto" and found["wireguard_go"]):
        from .userspace import UserspaceBackend

        return UserspaceBackend(log_dir)
    raise RuntimeError(
        "no WireGuard available: the kernel has no wireguard module "
        "and wireguard-go is not installed"
    )
