"""WireGuard backends: one interface, two real implementations.

kernel     the kernel module, over generic netlink (pyroute2): what the box runs
userspace  wireguard-go, over its UAPI socket: machines whose kernel lacks WireGuard

``detect()`` tries the kernel first by creating (and deleting) a probe interface; it
never assumes.
"""

import os
import shutil
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
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    probe = f"cbprobe{os.getpid() % 100000}"
    with IPRoute() as ipr:
        try:
            ipr.link("add", ifname=probe, kind="wireguard")
        except NetlinkError:
            return False
        ipr.link("del", ifname=probe)
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
    from .kernel import KernelBackend
    from .userspace import UserspaceBackend

    if choice == "kernel" or (choice == "auto" and found["kernel_wireguard"]):
        return KernelBackend()
    if choice == "userspace" or (choice == "auto" and found["wireguard_go"]):
        return UserspaceBackend(log_dir)
    raise RuntimeError(
        "no WireGuard available: the kernel has no wireguard module "
        "and wireguard-go is not installed"
    )
