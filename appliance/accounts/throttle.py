"""Whom a failed login slows down.

A login is counted against its address and against the account *as seen from where it
came*: the VPN, the home network or the Internet. Someone on the Internet who fails
again and again against the admin's account slows the Internet's attempts on it (and
their own address), never the household's from home or through the VPN.

An IPv6 address counts per /64: one home connection or one server gets a whole /64,
so rotating inside it gains an attacker nothing. Rotating IPv4 addresses or /64s does
not help either: the account's Internet counter grows with every failure, whatever the
address.
"""

import ipaddress

from ..homenet import is_home
from ..vpn.schema import VpnSettings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ORIGINS = ("vpn", "home", "internet")


def canonical(address: str) -> Address:
    """The address a client really has (an IPv4 client of an IPv6 socket comes as
    ::ffff:a.b.c.d); ValueError if it is not an address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def origin(ip: Address, vpn: VpnSettings) -> str:
    """ "vpn", "home" or "internet" (the VPN's subnets are private too: asked first)."""
    if ip in (vpn.ipv4_subnet if ip.version == 4 else vpn.ipv6_subnet):
        return "vpn"
    # Only the home's own ranges (appliance/homenet.py): not the VPN's home_networks, which
    # a household may set as broad as it likes for routing.
    return "home" if is_home(ip) else "internet"


def address_key(ip: Address) -> str:
    if ip.version == 6:
        return f"address:{ipaddress.ip_network((ip, 64), strict=False)}"
    return f"address:{ip}"


def login_keys(name: str, address: str, vpn: VpnSettings) -> list[str]:
    """The failure counters a login attempt by NAME from ADDRESS is checked against."""
    ip = canonical(address)
    return [address_key(ip), f"user:{name.lower()[:64]}@{origin(ip, vpn)}"]
