"""Network links and addresses through rtnetlink (pyroute2), for both backends.

The agent marks every interface it creates with the alias ``commonsbox`` so it can
find (and clean up) its own interfaces without touching anyone else's.
"""

import ipaddress
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

ALIAS = "commonsbox"
SYS_NET = Path("/sys/class/net")  # this namespace's links: `ip netns exec` remounts /sys
IFF_UP = 0x1
RT_SCOPE_UNIVERSE = 0
IFA_F_NODAD = 0x02  # a point-to-point tunnel has no neighbours to ask


_lock = threading.Lock()
_socket: IPRoute | None = None


@contextmanager
def _ipr():
    """One rtnetlink socket for the process (the agent never leaves its namespace);
    opening one per call cost more than the calls themselves."""
    global _socket
    with _lock:
        if _socket is None:
            _socket = IPRoute()
        try:
            yield _socket
        except OSError:
            _socket.close()
            _socket = None
            raise


def _index(name: str) -> int | None:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _sys(name: str, attribute: str) -> str | None:
    try:
        return (SYS_NET / name / attribute).read_text().strip()
    except OSError:
        return None


def managed() -> list[str]:
    """Names of the interfaces this agent made in this network namespace."""
    return sorted(path.name for path in SYS_NET.iterdir() if _sys(path.name, "ifalias") == ALIAS)


def exists(name: str) -> bool:
    return _index(name) is not None


def state(name: str) -> tuple[bool, frozenset[str]] | None:
    """(is it up, its global addresses as "addr/prefix") or None if there is no link."""
    index, flags = _index(name), _sys(name, "flags")
    if index is None or flags is None:
        return None
    with _ipr() as ipr:
        addresses = frozenset(
            str(ipaddress.ip_interface((a.get_attr("IFA_ADDRESS"), a["prefixlen"])))
            for a in ipr.get_addr(index=index)
            if a["scope"] == RT_SCOPE_UNIVERSE
        )
    return bool(int(flags, 16) & IFF_UP), addresses


def mark(name: str) -> None:
    with _ipr() as ipr:
        ipr.link("set", index=_index(name), ifalias=ALIAS)


def add_address(name: str, address: str) -> None:
    iface = ipaddress.ip_interface(address)
    with _ipr() as ipr:
        try:
            ipr.addr(
                "add",
                index=_index(name),
                address=str(iface.ip),
                prefixlen=iface.network.prefixlen,
                **({"flags": IFA_F_NODAD} if iface.version == 6 else {}),
            )
        except NetlinkError as err:
            if err.code != 17:  # EEXIST: already there is what we wanted
                raise


def remove_address(name: str, address: str) -> None:
    iface = ipaddress.ip_interface(address)
    with _ipr() as ipr:
        ipr.addr(
            "del", index=_index(name), address=str(iface.ip), prefixlen=iface.network.prefixlen
        )


def bring_up(name: str) -> None:
    with _ipr() as ipr:
        ipr.link("set", index=_index(name), state="up")


def delete(name: str) -> None:
    with _ipr() as ipr:
        index = _index(name)
        if index is not None:
            ipr.link("del", index=index)
