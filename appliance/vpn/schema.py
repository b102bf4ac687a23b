"""The VPN's slice of the desired state, as frozen dataclasses checked at the edge."""

import ipaddress
import secrets as random
from dataclasses import dataclass, field, replace
from functools import cached_property

from .. import validate as v
from ..accounts.schema import user_name
from ..errors import Conflict, Invalid
from ..slice import Slice

MODES = ("full", "home")  # full tunnel: all traffic via the box; home: only the home networks
KEY_HOLDERS = ("box", "device")  # who made the device's private key
NAME_MAX = 64
DNS_MAX = 4
HOME_NETWORKS_MAX = 16
DEVICES_PER_MEMBER = 20  # default: what one member may add before an admin raises it
DEVICES_PER_MEMBER_MAX = 1000


def device_key_name(device_id: int) -> str:
    """The secret of a device's private key, where the box made it."""
    return f"vpn/device/{device_id}"


def psk_name(device_id: int) -> str:
    return f"vpn/psk/{device_id}"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def from_json(cls, value, fld: str) -> "Endpoint":
        v.only_keys(value, fld, {"host", "port"})
        return cls(
            v.hostname_or_ip(value["host"], f"{fld}.host"),
            v.integer(value["port"], f"{fld}.port", 1, 65535),
        )

    def to_json(self) -> dict:
        return {"host": self.host, "port": self.port}

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _dns(value, fld):
    return str(v.address(value, fld))


@dataclass(frozen=True)
class Device:
    id: int
    name: str
    public_key: str
    ipv4: str  # canonical text: it is compared, hashed and printed far more than parsed
    ipv6: str
    mode: str = "home"
    dns: tuple[str, ...] | None = None  # None: the box-wide default
    preshared_key: bool = False
    key_holder: str = "box"
    owner: str | None = None  # the household member whose device it is; None: the box's

    @classmethod
    def from_json(cls, value, fld: str) -> "Device":
        v.only_keys(
            value,
            fld,
            {"id", "name", "public_key", "ipv4", "ipv6", "mode"},
            {"dns", "preshared_key", "key_holder", "owner"},
        )
        owner = value.get("owner")
        ipv4 = v.address(value["ipv4"], f"{fld}.ipv4")
        ipv6 = v.address(value["ipv6"], f"{fld}.ipv6")
        if ipv4.version != 4 or ipv6.version != 6:
            raise Invalid(f"{fld} has its addresses in the wrong family", fld)
        dns = value.get("dns")
        return cls(
            id=v.integer(value["id"], f"{fld}.id", 1, 2**31),
            name=v.text(value["name"], f"{fld}.name", NAME_MAX),
            public_key=v.wg_key(value["public_key"], f"{fld}.public_key"),
            ipv4=str(ipv4),
            ipv6=str(ipv6),
            mode=v.choice(value["mode"], f"{fld}.mode", MODES),
            dns=None if dns is None else v.listed(dns, f"{fld}.dns", _dns, DNS_MAX),
            preshared_key=v.boolean(value.get("preshared_key", False), f"{fld}.preshared_key"),
            key_holder=v.choice(value.get("key_holder", "box"), f"{fld}.key_holder", KEY_HOLDERS),
            owner=None if owner is None else user_name(owner, f"{fld}.owner"),
        )

    @cached_property
    def name_key(self) -> str:
        """The name as compared for uniqueness; kept on the (frozen) device once made."""
        return v.name_key(self.name)

    def to_json(self) -> dict:
        out = {
            "id": self.id,
            "name": self.name,
            "public_key": self.public_key,
            "ipv4": self.ipv4,
            "ipv6": self.ipv6,
            "mode": self.mode,
            "preshared_key": self.preshared_key,
            "key_holder": self.key_holder,
        }
        if self.dns is not None:
            out["dns"] = list(self.dns)
        if self.owner is not None:
            out["owner"] = self.owner
        return out


@dataclass(frozen=True)
class VpnSettings(Slice):
    required = True  # a document without it is broken: never a new VPN made up instead
    interface: str
    listen_port: int
    ipv4_subnet: ipaddress.IPv4Network
    ipv6_subnet: ipaddress.IPv6Network
    endpoint: Endpoint | None = None
    dns: tuple[str, ...] = ()
    home_networks: tuple = ()
    devices: tuple[Device, ...] = field(default=())
    devices_per_member: int = DEVICES_PER_MEMBER

    @classmethod
    def new(cls) -> "VpnSettings":
        """A fresh box: a random /20 in 10/8 and a random RFC 4193 ULA /64, so two
        households' boxes (and most home LANs) do not collide."""
        ipv4 = ipaddress.ip_network(f"10.{random.randbelow(256)}.{random.randbelow(16) * 16}.0/20")
        gid = random.randbits(40)
        ipv6 = ipaddress.ip_network(((0xFD << 120) | (gid << 80), 64))
        return cls(interface="wg0", listen_port=51820, ipv4_subnet=ipv4, ipv6_subnet=ipv6)

    @classmethod
    def from_json(cls, value, fld: str = "vpn") -> "VpnSettings":
        def f(name):
            return v.join(fld, name)

        v.only_keys(
            value,
            fld,
            {"interface", "listen_port", "ipv4_subnet", "ipv6_subnet"},
            {"endpoint", "dns", "home_networks", "devices", "devices_per_member"},
        )
        endpoint = value.get("endpoint")
        settings = cls(
            interface=v.ifname(value["interface"], f("interface")),
            listen_port=v.integer(value["listen_port"], f("listen_port"), 1, 65535),
            ipv4_subnet=subnet(value["ipv4_subnet"], f("ipv4_subnet"), 4),
            ipv6_subnet=subnet(value["ipv6_subnet"], f("ipv6_subnet"), 6),
            endpoint=None if endpoint is None else Endpoint.from_json(endpoint, f("endpoint")),
            dns=v.listed(value.get("dns", []), f("dns"), _dns, DNS_MAX),
            home_networks=v.listed(
                value.get("home_networks", []), f("home_networks"), v.any_network, HOME_NETWORKS_MAX
            ),
            devices=v.listed(value.get("devices", []), f("devices"), Device.from_json, 2**20),
            devices_per_member=v.integer(
                value.get("devices_per_member", DEVICES_PER_MEMBER),
                f("devices_per_member"),
                1,
                DEVICES_PER_MEMBER_MAX,
            ),
        )
        settings.check_devices()
        return settings

    def to_json(self) -> dict:
        return {**self.to_json_without_devices(), "devices": [d.to_json() for d in self.devices]}

    def reloads_since(self, previous: "VpnSettings") -> bool:
        """Thousands of devices: only the new or changed ones are checked again, unless
        the settings around them (the subnets) changed."""
        settings = self.to_json_without_devices()
        if settings != previous.to_json_without_devices():
            if VpnSettings.from_json({**settings, "devices": []}) != replace(self, devices=()):
                return False
            new = None  # other subnets: every device again
        else:
            known = set(map(id, previous.devices))
            new = [d for d in self.devices if id(d) not in known]
        for d in self.devices if new is None else new:
            if Device.from_json(d.to_json(), "vpn.devices") != d:
                return False
        self.check_devices(new)
        return True

    def to_json_without_devices(self) -> dict:
        out = {
            "interface": self.interface,
            "listen_port": self.listen_port,
            "ipv4_subnet": str(self.ipv4_subnet),
            "ipv6_subnet": str(self.ipv6_subnet),
            "dns": list(self.dns),
            "home_networks": [str(n) for n in self.home_networks],
            "devices_per_member": self.devices_per_member,
        }
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint.to_json()
        return out

    @property
    def box_ipv4(self) -> ipaddress.IPv4Interface:
        return ipaddress.ip_interface((self.ipv4_subnet[1], self.ipv4_subnet.prefixlen))

    @property
    def box_ipv6(self) -> ipaddress.IPv6Interface:
        return ipaddress.ip_interface((self.ipv6_subnet[1], self.ipv6_subnet.prefixlen))

    def check_devices(self, new: list[Device] | None = None) -> None:
        """Every device in the subnets, and no id, name, key or address used twice.
        NEW: the only devices not known to be in these subnets already (None: all)."""
        box_ipv4, box_ipv6 = self.box_ipv4.ip, self.box_ipv6.ip
        for d in self.devices if new is None else new:
            ipv4, ipv6 = ipaddress.ip_address(d.ipv4), ipaddress.ip_address(d.ipv6)
            if ipv4 not in self.ipv4_subnet or ipv4 in (
                box_ipv4,
                self.ipv4_subnet.broadcast_address,
            ):
                fld = f"vpn.devices[{self.devices.index(d)}]"
                raise Invalid(
                    f"{fld}.ipv4 is not a device address in {self.ipv4_subnet}", f"{fld}.ipv4"
                )
            if ipv6 not in self.ipv6_subnet or ipv6 == box_ipv6:
                fld = f"vpn.devices[{self.devices.index(d)}]"
                raise Invalid(
                    f"{fld}.ipv6 is not a device address in {self.ipv6_subnet}", f"{fld}.ipv6"
                )
        n = len(self.devices)
        if (
            len({d.id for d in self.devices}) == n
            and len({d.public_key for d in self.devices}) == n
            and len({d.ipv4 for d in self.devices}) == n
            and len({d.ipv6 for d in self.devices}) == n
            and len({d.name_key for d in self.devices}) == n
        ):
            return
        seen: dict[str, set] = {
            "id": set(),
            "name": set(),
            "public key": set(),
            "IPv4 address": set(),
            "IPv6 address": set(),
        }
        for i, d in enumerate(self.devices):  # which one: only once there is one
            for what, val in (
                ("id", d.id),
                ("name", d.name_key),
                ("public key", d.public_key),
                ("IPv4 address", d.ipv4),
                ("IPv6 address", d.ipv6),
            ):
                if val in seen[what]:
                    raise Conflict(f"two devices have the same {what}", f"vpn.devices[{i}]")
                seen[what].add(val)

    def device(self, ref) -> Device | None:
        """A device by id (int or digits) or by name."""
        for d in self.devices:
            if d.id == ref or str(d.id) == ref:
                return d
        key = v.name_key(ref) if isinstance(ref, str) else None
        return next((d for d in self.devices if d.name_key == key), None)

    def owners(self) -> frozenset[str]:
        return frozenset(d.owner for d in self.devices if d.owner is not None)

    def secrets(self) -> frozenset[str]:
        return frozenset(
            name
            for d in self.devices
            for name, held in (
                (device_key_name(d.id), d.key_holder == "box"),
                (psk_name(d.id), d.preshared_key),
            )
            if held
        )

    def restored(self, current: "VpnSettings", present: frozenset[str]) -> "VpnSettings":
        """A device whose key (or preshared key) is gone stays gone; one re-keyed since
        keeps its new key."""
        now = {d.id: d for d in current.devices}
        devices = []
        for d in self.devices:
            if d.key_holder == "box" and device_key_name(d.id) not in present:
                continue
            if d.preshared_key and psk_name(d.id) not in present:
                continue
            same = now.get(d.id)
            if same is not None and d.key_holder == "box" and same.public_key != d.public_key:
                d = replace(d, public_key=same.public_key)
            devices.append(d)
        return self.with_devices(devices)

    def without_owner(self, name: str) -> "VpnSettings":
        """Without NAME's devices: who leaves takes no tunnel home with them."""
        return replace(self, devices=tuple(d for d in self.devices if d.owner != name))

    def with_devices(self, devices) -> "VpnSettings":
        return replace(self, devices=tuple(sorted(devices, key=lambda d: d.id)))


def subnet(value, fld: str, version: int):
    net = v.network(value, fld, version)
    if version == 4 and not 16 <= net.prefixlen <= 29:
        raise Invalid(f"{fld} must be between a /16 and a /29", fld)
    if version == 6 and not 48 <= net.prefixlen <= 120:
        raise Invalid(f"{fld} must be between a /48 and a /120", fld)
    return net
