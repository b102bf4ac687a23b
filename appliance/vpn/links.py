"""Network links and addresses through rtnetlink, for both backends.

The agent marks every interface it creates with the alias ``commonsbox`` so it can
find (and clean up) its own interfaces without touching anyone else's.

Reading (every reconcile) speaks rtnetlink directly, in a few lines of the standard
library; changing links (rare: when an interface is made) uses pyroute2, imported only
then: its import alone is 22 MB of the agent's memory, which the userspace backend
otherwise never needs.
"""

import ipaddress
import socket
import struct
import threading
from contextlib import contextmanager
from pathlib import Path

ALIAS = "commonsbox"
SYS_NET = Path("/sys/class/net")  # this namespace's links: `ip netns exec` remounts /sys
IFF_UP = 0x1
RT_SCOPE_UNIVERSE = 0
IFA_F_NODAD = 0x02  # a point-to-point tunnel has no neighbours to ask


_lock = threading.Lock()
_socket = None  # pyroute2's IPRoute, once a link was changed


@contextmanager
def _ipr():
    """One rtnetlink socket for the process (the agent never leaves its namespace);
    opening one per call cost more than the calls themselves."""
    global _socket
    with _lock:
        if _socket is None:
            from pyroute2 import IPRoute

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
    return bool(int(flags, 16) & IFF_UP), frozenset(addresses(index))


# rtnetlink, as linux/netlink.h, linux/rtnetlink.h and linux/if_addr.h define it
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_RTA = struct.Struct("=HH")  # length, type
NLMSG_ERROR, NLMSG_DONE, RTM_GETADDR = 2, 3, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS = 1


def addresses(index: int) -> list[str]:
    """The link's global addresses as "addr/prefix", from one RTM_GETADDR dump."""
    found = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        body = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        nl.sendall(
            _NLMSG.pack(_NLMSG.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
            + body
        )
        while True:
            data = nl.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, _, _, _ = _NLMSG.unpack_from(data, offset)
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    (errno,) = struct.unpack_from("=i", data, offset + _NLMSG.size)
                    if errno:
                        raise OSError(-errno, "rtnetlink refused to list addresses")
                    return found
                family, prefix, _, scope, at = _IFADDRMSG.unpack_from(data, offset + _NLMSG.size)
                if at == index and scope == RT_SCOPE_UNIVERSE:
                    address = _attribute(data, offset, length, IFA_ADDRESS)
                    if address is not None:
                        found.append(f"{ipaddress.ip_address(address)}/{prefix}")
                offset += (length + 3) & ~3
            if not data:
                return found


def _attribute(data: bytes, offset: int, length: int, wanted: int) -> bytes | None:
    at, end = offset + _NLMSG.size + _IFADDRMSG.size, offset + length
    while at + _RTA.size <= end:
        size, kind = _RTA.unpack_from(data, at)
        if size < _RTA.size:
            return None
        if kind == wanted:
            return data[at + _RTA.size : at + size]
        at += (size + 3) & ~3
    return None


def mark(name: str) -> None:
    with _ipr() as ipr:
        ipr.link("set", index=_index(name), ifalias=ALIAS)


def add_address(name: str, address: str) -> None:
    from pyroute2.netlink.exceptions import NetlinkError

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
