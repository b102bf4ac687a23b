"""Is this address at home? The one answer the firewall and the web UI share.

Home is the box itself (loopback), what a home's own network uses (private and
link-local ranges: a connection the router forwards from the Internet keeps its public
source address), and the networks the household names: the VPN's subnets and the home
networks the VPN reaches. Everything else is the Internet.
"""

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

HOME_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
HOME_V6 = ("fc00::/7", "fe80::/10")
_PRIVATE = tuple(ip_network(n) for n in HOME_V4 + HOME_V6)

Network = IPv4Network | IPv6Network


def is_home(
    address: str | IPv4Address | IPv6Address | None, networks: Iterable[str | Network] = ()
) -> bool:
    """ADDRESS (as a peer's address arrives: text, perhaps IPv4-mapped or with an IPv6
    zone; or parsed) is the box, the home's network or one of NETWORKS. Not an address:
    False."""
    try:
        ip = ip_address(str(address or "").split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return True
    return any(ip in net for net in (*_PRIVATE, *(ip_network(n) for n in networks)))
