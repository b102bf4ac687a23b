"""Network links and addresses through rtnetlink (pyroute2), for both backends.

The agent marks every interface it creates with the alias ``commonsbox`` so it can
find (and clean up) its own interfaces without touching anyone else's.
"""

import ipaddress
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

ALIAS = "commonsbox"
IFF_UP = 0x1
RT_SCOPE_UNIVERSE = 0
IFA_F_NODAD = 0x02  # a point-to-point tunnel has no neighbours to ask


@contextmanager
def _ipr():
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def managed() -> list[str]:
    """Names of the interfaces this agent made in this network namespace."""
    with _ipr() as ipr:
        return sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                      if link.get_attr("IFLA_IFALIAS") == ALIAS)


def exists(name: str) -> bool:
    with _ipr() as ipr:
        return _index(ipr, name) is not None


def state(name: str) -> tuple[bool, frozenset[str]] | None:
    """(is it up, its global addresses as "addr/prefix") or None if there is no link."""
    with _ipr() as ipr:
        index = _index(ipr, name)
        if index is None:
            return None
        (link,) = ipr.get_links(index)
        addresses = frozenset(
            str(ipaddress.ip_interface((a.get_attr("IFA_ADDRESS"), a["prefixlen"])))
            for a in ipr.get_addr(index=index) if a["scope"] == RT_SCOPE_UNIVERSE)
        return bool(link["flags"] & IFF_UP), addresses


def mark(name: str) -> None:
    with _ipr() as ipr:
        ipr.link("set", index=_index(ipr, name), ifalias=ALIAS)


def add_address(name: str, address: str) -> None:
    iface = ipaddress.ip_interface(address)
    with _ipr() as ipr:
        try:
            ipr.addr("add", index=_index(ipr, name), address=str(iface.ip),
                     prefixlen=iface.network.prefixlen,
                     **({"flags": IFA_F_NODAD} if iface.version == 6 else {}))
        except NetlinkError as err:
            if err.code != 17:  # EEXIST: already there is what we wanted
                raise


def remove_address(name: str, address: str) -> None:
    iface = ipaddress.ip_interface(address)
    with _ipr() as ipr:
        ipr.addr("del", index=_index(ipr, name), address=str(iface.ip),
                 prefixlen=iface.network.prefixlen)


def bring_up(name: str) -> None:
    with _ipr() as ipr:
        ipr.link("set", index=_index(ipr, name), state="up")


def delete(name: str) -> None:
    with _ipr() as ipr:
        index = _index(ipr, name)
        if index is not None:
            ipr.link("del", index=index)
