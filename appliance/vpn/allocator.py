"""Hands each new device an IPv4 and an IPv6 address that no kept revision holds."""

from collections.abc import Callable
from operator import attrgetter

from ..errors import PoolExhausted
from .schema import VpnSettings

_IPV4, _IPV6 = attrgetter("ipv4"), attrgetter("ipv6")


class AddressPool:
    """The lowest host index whose IPv4 and IPv6 addresses are not held by any kept
    revision (``was_handed_out``) nor by a device of the state being changed.

    Index 1 is the box; a device gets the same index in both subnets. Between
    releases (``releases()`` changes when the store frees addresses) addresses are
    only ever added, so the search resumes where it stopped.
    """

    def __init__(
        self,
        was_handed_out: Callable[[str], bool],
        releases: Callable[[], int],
        reclaim: Callable[[], object] | None = None,
    ):
        self._was_handed_out = was_handed_out
        self._releases = releases
        self._reclaim = reclaim  # frees what deleted revisions held, before giving up
        self._resume: dict[tuple, int] = {}
        self._seen_releases = releases()

    def next(self, vpn: VpnSettings) -> tuple[str, str]:
        try:
            return self._next(vpn)
        except PoolExhausted:
            if self._reclaim is None:
                raise
            self._reclaim()  # the store sweeps in batches; a full pool cannot wait
            return self._next(vpn)

    def _next(self, vpn: VpnSettings) -> tuple[str, str]:
        if self._releases() != self._seen_releases:
            self._seen_releases = self._releases()
            self._resume.clear()
        v4, v6 = vpn.ipv4_subnet, vpn.ipv6_subnet
        last = min(v4.num_addresses - 2, v6.num_addresses - 1)
        key = (v4, v6)
        index = self._resume.get(key, 2)
        while index <= last:
            a4, a6 = str(v4[index]), str(v6[index])
            # The store records every stored device's addresses; the devices of the
            # state being changed are looked at only for a candidate (one scan).
            if not (
                self._was_handed_out(a4)
                or self._was_handed_out(a6)
                or a4 in map(_IPV4, vpn.devices)  # `in` over a map: a scan in C
                or a6 in map(_IPV6, vpn.devices)
            ):
                self._resume[key] = index
                return a4, a6
            index += 1
        self._resume[key] = index
        raise PoolExhausted(
            f"the VPN has no free address left in {v4} (addresses held by kept "
            f"revisions are not handed out again): choose a larger subnet, or keep "
            f"fewer revisions",
            "ipv4_subnet",
        )
