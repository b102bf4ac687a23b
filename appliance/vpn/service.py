"""The changes a household makes to its VPN, as functions of the desired state.

Each takes the current ``Desired`` and returns the next one (and what it made);
the agent stores it as a new revision and reconciles. Nothing here touches the
system. Keys are made here, in-process, and kept in the secret store.
"""

from dataclasses import replace

from .. import validate as v
from ..errors import Conflict, Invalid, NotFound, PoolExhausted
from ..schema import Desired
from ..secrets import Secret, SecretStore
from ..store import StateStore
from ..validate import UNSET
from . import keys
from .allocator import AddressPool
from .capability import BOX_KEY, BOX_PUBLIC_KEY
from .schema import DNS_MAX, MODES, NAME_MAX, Device, VpnSettings, device_key_name, psk_name


def _dns(value, fld):
    return (
        None if value is None else v.listed(value, fld, lambda x, f: str(v.address(x, f)), DNS_MAX)
    )


def check_member_limit(vpn: VpnSettings, owner: str) -> None:
    """One member may own at most ``devices_per_member`` devices: admins too, for the
    devices they own (they can raise the limit, which the history then shows). The
    box's own devices (no owner, added as root) are not counted."""
    owned = sum(1 for d in vpn.devices if d.owner == owner)
    if owned >= vpn.devices_per_member:
        raise PoolExhausted(
            f"{owner} already has {owned} devices, the most one member may have "
            f"({vpn.devices_per_member}): remove one first, or an admin raises the limit",
            "devices_per_member",
        )


class VpnService:
    def __init__(self, store: StateStore, secrets: SecretStore):
        self.store = store
        self.secrets = secrets
        self.pool = AddressPool(store.was_handed_out, lambda: store.releases, store.sweep)

    def ensure_box_key(self) -> None:
        """Make the box's key on first start; keep its public half beside it."""
        private = self.secrets.get(BOX_KEY)
        if private is None:
            private = keys.new_private_key()
            self.secrets.put(BOX_KEY, private)
        if self.secrets.get(BOX_PUBLIC_KEY) is None:
            self.secrets.put(BOX_PUBLIC_KEY, Secret(keys.public_key(private)))
        self._box_public_key = self.secrets.get(BOX_PUBLIC_KEY).reveal()

    def box_public_key(self) -> str:
        return self._box_public_key

    def find(self, desired: Desired, ref) -> Device:
        if not isinstance(ref, (int, str)) or isinstance(ref, bool):
            raise Invalid("device must be a device's number or name", "device")
        device = desired.vpn.device(ref)
        if device is None:
            raise NotFound(f"there is no device {ref!r}", "device")
        return device

    def _check_name(self, vpn: VpnSettings, name, except_id: int | None = None) -> str:
        name = v.text(name, "name", NAME_MAX)
        key = v.name_key(name)
        if any(d.name_key == key and d.id != except_id for d in vpn.devices):
            raise Conflict(f"a device called {name!r} already exists", "name")
        return name

    def add_device(
        self,
        desired: Desired,
        name,
        mode="home",
        dns=None,
        preshared_key=False,
        public_key=None,
        owner: str | None = None,
    ) -> tuple[Desired, Device]:
        vpn = desired.vpn
        name = self._check_name(vpn, name)
        if owner is not None:
            check_member_limit(vpn, owner)
        mode = v.choice(mode, "mode", MODES)
        dns = _dns(dns, "dns")
        preshared_key = v.boolean(preshared_key, "preshared_key")
        private_key = None
        if public_key is None:
            private_key = keys.new_private_key()
            public_key = keys.public_key(private_key)
        else:
            public_key = v.wg_key(public_key, "public_key")
            if public_key == self.box_public_key() or any(
                d.public_key == public_key for d in vpn.devices
            ):
                raise Conflict("this public key is already in use", "public_key")
        ipv4, ipv6 = self.pool.next(vpn)
        device = Device(
            id=self.store.last_device_id + 1,
            name=name,
            public_key=public_key,
            ipv4=ipv4,
            ipv6=ipv6,
            mode=mode,
            dns=dns,
            preshared_key=preshared_key,
            key_holder="box" if private_key else "device",
            owner=owner,
        )
        # Secrets first: a crash before the revision is stored leaves only an orphan
        # under an id that was never committed, and the next device overwrites it.
        if private_key:
            self.secrets.put(device_key_name(device.id), private_key)
        if preshared_key:
            self.secrets.put(psk_name(device.id), keys.new_preshared_key())
        # The newest id sorts last: appending keeps the devices in id order.
        return desired.replace(vpn=replace(vpn, devices=vpn.devices + (device,))), device

    def update_device(
        self, desired: Desired, ref, name=UNSET, mode=UNSET, dns=UNSET
    ) -> tuple[Desired, Device]:
        vpn = desired.vpn
        old = self.find(desired, ref)
        new = old
        if name is not UNSET:
            new = replace(new, name=self._check_name(vpn, name, except_id=old.id))
        if mode is not UNSET:
            new = replace(new, mode=v.choice(mode, "mode", MODES))
        if dns is not UNSET:
            new = replace(new, dns=_dns(dns, "dns"))
        devices = tuple(new if d.id == old.id else d for d in vpn.devices)
        return desired.replace(vpn=replace(vpn, devices=devices)), new

    def remove_device(self, desired: Desired, ref) -> tuple[Desired, Device]:
        vpn = desired.vpn
        gone = self.find(desired, ref)
        # The keys stay in the secret store: restoring an earlier revision brings the
        # device back as it was. The peer is off the interface all the same.
        devices = tuple(d for d in vpn.devices if d.id != gone.id)
        return desired.replace(vpn=replace(vpn, devices=devices)), gone

    def rekey(self, desired: Desired, made: dict) -> Desired:
        """New key pairs for the devices whose private keys the box made; MADE gets
        device id -> its new private key, for the caller to keep once stored."""
        devices = []
        for d in desired.vpn.devices:
            if d.key_holder == "box":
                made[d.id] = private_key = keys.new_private_key()
                d = replace(d, public_key=keys.public_key(private_key))
            devices.append(d)
        return desired.replace(vpn=replace(desired.vpn, devices=tuple(devices)))

    def change_settings(self, desired: Desired, **changes) -> Desired:
        """Change box-wide VPN settings; every value is checked as the schema does."""
        vpn = desired.vpn
        if vpn.devices:
            for key in ("ipv4_subnet", "ipv6_subnet"):
                if key in changes and changes[key] != str(getattr(vpn, key)):
                    raise Conflict("the subnets can only change while the VPN has no devices", key)
        doc = {**vpn.to_json(), **changes}
        if doc.get("endpoint") is None:
            doc.pop("endpoint", None)
        doc.pop("devices")
        return desired.replace(vpn=replace(VpnSettings.from_json(doc, ""), devices=vpn.devices))
