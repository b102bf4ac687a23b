"""Hands each new device an IPv4 and an IPv6 address that no device ever had."""

from collections.abc import Callable

from ..errors import PoolExhausted
from .schema import VpnSettings


class AddressPool:
    """The lowest host index whose IPv4 and IPv6 addresses were never handed out.

    Index 1 is the box; a device gets the same index in both subnets. Addresses are
    only ever added to ``was_handed_out``, so the search can resume where it stopped.
    """

    def __init__(self, was_handed_out: Callable[[object], bool]):
        self._was_handed_out = was_handed_out
        self._resume: dict[tuple, int] = {}

    def next(self, vpn: VpnSettings) -> tuple[str, str]:
        v4, v6 = vpn.ipv4_subnet, vpn.ipv6_subnet
        in_use = {d.ipv4 for d in vpn.devices} | {d.ipv6 for d in vpn.devices}
        last = min(v4.num_addresses - 2, v6.num_addresses - 1)
        key = (v4, v6)
        index = self._resume.get(key, 2)
        while index <= last:
            a4, a6 = str(v4[index]), str(v6[index])
            if not (
                a4 in in_use or a6 in in_use or self._was_handed_out(a4) or self._was_handed_out(a6)
            ):
                self._resume[key] = index
                return a4, a6
            index += 1
        self._resume[key] = index
        raise PoolExhausted(
            f"the VPN has no address left that was never used before in {v4}: "
            f"choose a larger subnet",
            "ipv4_subnet",
        )
