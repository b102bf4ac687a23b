"""Render the box's nftables table from the desired state.

Only values that were parsed into ipaddress objects or matched the interface-name
pattern reach the text. The table's comment carries a hash of its structure so the
planner can tell "same rules" from "rules changed" without parsing nft's output;
which devices are full-tunnel lives in sets that change element by element.
"""

import hashlib
from dataclasses import dataclass

from ..schema import Desired

TABLE = "commonsbox"
FULL_V4, FULL_V6 = "full_tunnel_v4", "full_tunnel_v6"
WEBUI_PORT = 443  # the web UI's unit binds it on the box
DHCP_CLIENT_PORTS = (68, 546)  # the uplink's DHCPv4 and DHCPv6 answers


# What a home's own network uses (and link-local): the installer's SSH answers these
# (and the VPN) only. A connection the router forwards from the Internet keeps its
# public source address, so it is dropped.
HOME_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
HOME_V6 = ("fc00::/7", "fe80::/10")


def home_ports(desired: Desired) -> frozenset[tuple[str, int]]:
    """What the box answers from the home's network, not from the Internet."""
    from ..capabilities import ports  # the list holds the firewall too: read at call time

    return ports(desired).home


def open_ports(desired: Desired) -> frozenset[tuple[str, int]]:
    """What the box answers from outside the VPN: nothing else may listen there. The
    web UI and the uplink's DHCP are the box's own; the rest the capabilities declare."""
    from ..capabilities import ports

    own = {("tcp", WEBUI_PORT), *(("udp", port) for port in DHCP_CLIENT_PORTS)}
    return frozenset(own) | ports(desired).open


@dataclass(frozen=True)
class Wanted:
    structure: str  # the table without set members, with {comment} to fill in
    digest: str
    members: dict[str, frozenset[str]]  # set name -> addresses
    forwarding: bool

    def text(self) -> str:
        """The whole table, members included, as one `nft -f` transaction."""
        body = self.structure.replace("{comment}", self.comment)
        for name, members in self.members.items():
            if members:
                elements = ", ".join(sorted(members))
                body += f"add element inet {TABLE} {name} {{ {elements} }}\n"
        return f"add table inet {TABLE}\ndelete table inet {TABLE}\n{body}"

    @property
    def comment(self) -> str:
        return f"commonsbox {self.digest}"


def wanted(desired: Desired) -> Wanted:
    vpn = desired.vpn
    wg = vpn.interface  # validated: [A-Za-z0-9_=+.-]{1,15}
    home4 = [vpn.ipv4_subnet] + [n for n in vpn.home_networks if n.version == 4]
    home6 = [vpn.ipv6_subnet] + [n for n in vpn.home_networks if n.version == 6]
    ports = sorted(open_ports(desired))
    tcp = ", ".join(str(n) for proto, n in ports if proto == "tcp")
    udp = ", ".join(str(n) for proto, n in ports if proto == "udp")
    home = "".join(
        f"\n        {family} saddr {{ {', '.join(nets)} }} {proto} dport {{ {port} }} accept"
        for proto, port in sorted(home_ports(desired))
        for family, nets in (("ip", HOME_V4), ("ip6", HOME_V6))
    )
    structure = f"""table inet {TABLE} {{
    comment "{{comment}}"
    set {FULL_V4} {{ type ipv4_addr; }}
    set {FULL_V6} {{ type ipv6_addr; }}
    chain input {{
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        iif "lo" accept
        iifname "{wg}" accept
        meta l4proto {{ icmp, ipv6-icmp }} accept
        tcp dport {{ {tcp} }} accept
        udp dport {{ {udp} }} accept{home}
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{wg}" ip daddr {{ {", ".join(map(str, home4))} }} accept
        iifname "{wg}" ip6 daddr {{ {", ".join(map(str, home6))} }} accept
        iifname "{wg}" ip saddr @{FULL_V4} accept
        iifname "{wg}" ip6 saddr @{FULL_V6} accept
        iifname "{wg}" counter drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {vpn.ipv4_subnet} oifname != "{wg}" masquerade
        ip6 saddr {vpn.ipv6_subnet} oifname != "{wg}" masquerade
    }}
}}
"""
    full = [d for d in vpn.devices if d.mode == "full"]
    return Wanted(
        structure=structure,
        digest=hashlib.sha256(structure.encode()).hexdigest()[:16],
        members={
            FULL_V4: frozenset(str(d.ipv4) for d in full),
            FULL_V6: frozenset(str(d.ipv6) for d in full),
        },
        forwarding=True,
    )
