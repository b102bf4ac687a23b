"""The VPN's API methods: its settings and the household's devices."""

from ..accounts.service import Caller
from ..api.methods import (
    BOOL,
    INT,
    LIST,
    OPT_LIST,
    OPT_OBJ,
    OPT_TEXT,
    REQUIRED,
    TEXT,
    WHY,
    change,
    changed,
    maker,
    method,
    named,
    reason,
)
from ..box import Box
from ..errors import Invalid, NotFound
from ..validate import UNSET
from .schema import Device

# What a live row holds (Box.devices_live); vpn.device.live's COLUMNS names some of them.
LIVE_FIELDS = (
    "id",
    "name",
    "ipv4",
    "ipv6",
    "mode",
    "owner",
    "latest_handshake",
    "rx_bytes",
    "tx_bytes",
    "endpoint",
)


@method(
    "vpn.device.live",
    access="member",
    offset=(INT, 0),
    limit=(INT, 1000),
    columns=(OPT_LIST, None),
)
def devices_live(box: Box, caller: Caller, offset, limit, columns):
    """A page of the devices the caller may see, with last handshake and traffic. With
    COLUMNS, a table: each row a list of those fields, in that order (a page that shows
    five of ten sends, and reads, a third of the bytes)."""
    if offset < 0 or not 1 <= limit <= 10_000:
        raise Invalid("offset must be 0 or more and limit between 1 and 10000", "limit")
    if columns is not None and (not columns or not all(c in LIVE_FIELDS for c in columns)):
        raise Invalid(f"columns must be some of {', '.join(LIVE_FIELDS)}", "columns")
    live = box.devices_live(
        None if caller.manages_box else lambda d: d.owner == caller.name, offset, limit
    )
    if columns is None:
        return live
    return {"total": live["total"], "rows": [[d[c] for c in columns] for d in live["devices"]]}


def _settings(box: Box) -> dict:
    _, desired = box.head()
    out = desired.vpn.to_json()
    del out["devices"]
    out["public_key"] = box.vpn.box_public_key()
    out["backend"] = box.backend.kind
    return out


def visible_devices(box: Box, caller: Caller) -> list[Device]:
    _, desired = box.head()
    return [d for d in desired.vpn.devices if caller.manages_box or d.owner == caller.name]


def _device(box: Box, caller: Caller, ref) -> Device:
    """A device the caller may see; another member's device does not exist for them."""
    _, desired = box.head()
    device = box.vpn.find(desired, ref)
    if not caller.manages_box and device.owner != caller.name:
        raise NotFound(f"there is no device {ref!r}", "device")
    return device


@method("vpn.device.link", access="member", device=((int, str), REQUIRED))
def device_link(box: Box, caller: Caller, device):
    """A link that hands this device's config out once, within 24 hours."""
    found = _device(box, caller, device)
    box.device_config(found.id)  # fails now (no endpoint, own key) rather than at redeem
    token, expires = box.runtime.open_link(found.id, maker(caller))
    return {"token": token, "expires": expires}


@method("vpn.device.redeem", access="public", token=(TEXT, REQUIRED))
def device_redeem(box: Box, caller: Caller, token):
    device_id = box.runtime.redeem_link(token) if len(token) <= 128 else None
    if device_id is None or box.head()[1].vpn.device(device_id) is None:
        raise NotFound("this link is unknown, used or expired", "token")
    file_name, config = box.device_config(device_id)
    return {"file_name": file_name, "config": config}


@method("vpn.settings.get", access="member")
def settings_get(box: Box, caller: Caller):
    return _settings(box)


@method(
    "vpn.settings.set",
    interface=(TEXT, UNSET),
    listen_port=(INT, UNSET),
    ipv4_subnet=(TEXT, UNSET),
    ipv6_subnet=(TEXT, UNSET),
    endpoint=(OPT_OBJ, UNSET),
    dns=(LIST, UNSET),
    home_networks=(LIST, UNSET),
    devices_per_member=(INT, UNSET),
    **WHY,
)
def settings_set(box: Box, caller: Caller, why, **changes):
    changes = named(changes)
    answer = change(
        box,
        caller.who,
        reason(why, "change VPN settings: " + ", ".join(sorted(changes))),
        lambda d: box.vpn.change_settings(d, **changes),
    )
    return {**answer, "settings": _settings(box)}


@method(
    "vpn.device.add",
    access="member",
    name=(TEXT, REQUIRED),
    mode=(TEXT, "home"),
    dns=(OPT_LIST, None),
    preshared_key=(BOOL, False),
    public_key=(OPT_TEXT, None),
    **WHY,
)
def device_add(box: Box, caller: Caller, name, mode, dns, preshared_key, public_key, why):
    owner = None if caller.role == "root" else caller.name
    revision, device, outcomes = box.change(
        caller.who,
        reason(why, f"add device “{name}”"),
        lambda d: box.vpn.add_device(d, name, mode, dns, preshared_key, public_key, owner),
    )
    return {**changed(revision, outcomes), "device": device.to_json()}


@method("vpn.device.list", access="member")
def device_list(box: Box, caller: Caller):
    return [d.to_json() for d in visible_devices(box, caller)]


@method("vpn.device.get", access="member", device=((int, str), REQUIRED))
def device_get(box: Box, caller: Caller, device):
    return _device(box, caller, device).to_json()


@method(
    "vpn.device.update",
    access="member",
    device=((int, str), REQUIRED),
    name=(TEXT, UNSET),
    mode=(TEXT, UNSET),
    dns=(OPT_LIST, UNSET),
    **WHY,
)
def device_update(box: Box, caller: Caller, device, name, mode, dns, why):
    ref = _device(box, caller, device).id
    revision, updated, outcomes = box.change(
        caller.who,
        reason(why, f"change device {ref}"),
        lambda d: box.vpn.update_device(d, ref, name, mode, dns),
    )
    return {**changed(revision, outcomes), "device": updated.to_json()}


@method("vpn.device.remove", access="member", device=((int, str), REQUIRED), **WHY)
def device_remove(box: Box, caller: Caller, device, why):
    found = _device(box, caller, device)
    revision, gone, outcomes = box.change(
        caller.who,
        reason(why, f"remove device “{found.name}”"),
        lambda d: box.vpn.remove_device(d, found.id),
    )
    return {**changed(revision, outcomes), "device": gone.to_json()}


@method("vpn.device.config", access="member", device=((int, str), REQUIRED))
def device_config(box: Box, caller: Caller, device):
    file_name, config = box.device_config(_device(box, caller, device).id)
    return {"file_name": file_name, "config": config}
