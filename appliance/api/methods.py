"""The API's methods: who may call each, a typed signature, then a call into the box.

A method's parameters are declared as name -> (allowed JSON types, default), with
REQUIRED for no default. Anything undeclared, missing or of the wrong type is
refused before the box is touched. ``access`` says who may call it:

  public    anyone who may reach the socket, even without a session (claim, login)
  member    any household member with a session (their own devices only)
  manager   admins and the installer (and root): the whole box
  root      root on the box only (the CLI)

``hardware=True`` also lets the hardware service's own user call it (read what the
display and LEDs show, ask for the button's factory reset); it may call nothing else.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..accounts.schema import ROLES, user_name
from ..accounts.service import Caller
from ..box import Box
from ..console import announce
from ..errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from ..files.schema import FilesSettings
from ..mail.autoconfig import autoconfig_xml
from ..mail.service import client_settings
from ..ssh.openssh import fingerprint as key_fingerprint
from ..ssh.schema import SshKey, SshSettings, key_comment
from ..validate import address, choice, text
from ..vpn.schema import Device
from ..vpn.service import UNSET

REQUIRED = object()
NoneType = type(None)
TEXT, INT, BOOL, LIST, OBJ = (str,), (int,), (bool,), (list,), (dict,)
OPT_TEXT, OPT_INT, OPT_LIST, OPT_OBJ = (
    (str, NoneType),
    (int, NoneType),
    (list, NoneType),
    (dict, NoneType),
)
WHY = {"why": (OPT_TEXT, None)}
JSON_TYPES = {
    str: "text",
    int: "a whole number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    NoneType: "null",
}


ACCESS = ("public", "member", "manager", "root")


@dataclass(frozen=True)
class Method:
    name: str
    access: str
    params: dict[str, tuple[tuple[type, ...], Any]]
    run: Callable[..., Any]
    hardware: bool = False  # the hardware service may call it too


HARDWARE = Caller("hardware service", "hardware")  # not a valid user name: owns nothing


METHODS: dict[str, Method] = {}


def method(method_name: str, /, access: str = "manager", hardware: bool = False, **params):
    assert access in ACCESS

    def register(fn):
        METHODS[method_name] = Method(method_name, access, params, fn, hardware)
        return fn

    return register


def check_access(m: Method, caller: Caller, claimed: bool) -> None:
    if caller is HARDWARE:
        if not m.hardware:
            raise Forbidden(
                "the hardware service may only read the box's status and ask for a factory reset"
            )
        return
    if m.access == "public" or caller.role == "root":
        return
    if m.access == "root":
        raise Forbidden("only root on the box may do this")
    if not claimed:
        raise Forbidden("this box is not claimed yet: claim it with its setup code first")
    if caller.role == "anonymous":
        raise Unauthorized("please log in")
    if m.access == "manager" and not caller.manages_box:
        raise Forbidden("only an admin may do this")


def check_params(m: Method, params) -> dict:
    if not isinstance(params, dict):
        raise Invalid("params must be an object", "params")
    unknown = params.keys() - m.params.keys()
    if unknown:
        raise Invalid(f"{m.name} has no parameter {sorted(unknown)[0]!r}", sorted(unknown)[0])
    out = {}
    for key, (types, default) in m.params.items():
        if key not in params:
            if default is REQUIRED:
                raise Invalid(f"{key} is required", key)
            out[key] = default
            continue
        value = params[key]
        # bool is an int in Python, but not in JSON: keep them apart
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(JSON_TYPES[t] for t in types)
            raise Invalid(f"{key} must be {wanted}", key)
        out[key] = value
    return out


def _why(why, default: str) -> str:
    return default if why is None else text(why, "why", 200)


def _changed(revision, outcomes) -> dict:
    return {
        "revision": revision.n,
        "applied": all(o.converged for o in outcomes),
        "reconcile": [o.to_json() for o in outcomes],
    }


def _apply(box: Box, who: str, why: str, make) -> dict:
    """A change whose ``make`` returns just the next desired state: stored, reconciled,
    and answered the way every change is."""
    revision, _, outcomes = box.change(who, why, lambda d: (make(d), None))
    return _changed(revision, outcomes)


# -- status and configuration history ---------------------------------------------


@method("status", access="member", hardware=True)
def status(box: Box, caller: Caller):
    result = box.status()
    if not caller.manages_box:
        # A member sees what is theirs: their devices, and who changed what only when
        # it was them (another's "why" names that person's devices).
        mine = {d.id for d in _visible_devices(box, caller)}
        result["vpn"]["devices"] = [d for d in result["vpn"]["devices"] if d["id"] in mine]
        if result["revision"]["who"] != caller.who:
            result["revision"].update(who=None, why=None)
        result["last_reconcile"] = []
    return result


@method("vpn.device.live", access="member", offset=(INT, 0), limit=(INT, 1000))
def devices_live(box: Box, caller: Caller, offset, limit):
    """A page of the devices the caller may see, with last handshake and traffic."""
    if offset < 0 or not 1 <= limit <= 10_000:
        raise Invalid("offset must be 0 or more and limit between 1 and 10000", "limit")
    return box.devices_live(
        None if caller.manages_box else lambda d: d.owner == caller.name, offset, limit
    )


@method("reconcile")
def run_reconcile(box: Box, caller: Caller):
    return [o.to_json() for o in box.reconcile()]


@method("config.history", limit=(INT, 50), before=(OPT_INT, None))
def history(box: Box, caller: Caller, limit, before):
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000", "limit")
    return [r.to_json() for r in box.store.history(limit, before)]


@method("config.diff", a=(INT, REQUIRED), b=(OPT_INT, None))
def diff(box: Box, caller: Caller, a, b):
    head, _ = box.head()
    return {"a": a, "b": b or head.n, "diff": box.diff(a, b or head.n)}


@method("config.rollback", revision=(INT, REQUIRED))
def rollback(box: Box, caller: Caller, revision):
    box.store.revision(revision)  # NotFound before anything changes
    new, outcomes = box.rollback(revision, caller.who)
    return _changed(new, outcomes)


@method("config.pin", revision=(INT, REQUIRED), pinned=(BOOL, True))
def pin(box: Box, caller: Caller, revision, pinned):
    """A pinned revision is kept however many changes follow (appliance/store.py)."""
    with box.lock:
        return box.store.pin(revision, pinned).to_json()


@method("config.retention", keep=(OPT_INT, None))
def retention(box: Box, caller: Caller, keep):
    """How many of the newest revisions are kept (besides the pinned ones); KEEP sets it."""
    with box.lock:
        return {"keep": box.store.keep if keep is None else box.store.set_keep(keep)}


# -- claiming the box, accounts and sessions ---------------------------------------


@method("setup.status", access="public", hardware=True)
def setup_status(box: Box, caller: Caller):
    _, desired = box.head()
    return {
        "claimed": desired.box.claimed,
        "name": desired.box.name,
        "language": desired.box.language,
    }


@method("setup.code", access="root", hardware=True, renew=(BOOL, False))
def setup_code(box: Box, caller: Caller, renew):
    if renew and caller is HARDWARE:
        raise Forbidden("the hardware service shows the setup code; it may not renew it")
    _, desired = box.head()
    if desired.box.claimed:
        raise Forbidden("this box is already claimed: it has no setup code")
    code, expires = box.runtime.setup_code(renew)
    return {"code": code, "expires": expires}


@method(
    "setup.claim",
    access="public",
    code=(TEXT, REQUIRED),
    address=(TEXT, REQUIRED),
    language=(TEXT, REQUIRED),
    box_name=(TEXT, REQUIRED),
    admin_name=(TEXT, REQUIRED),
    passphrase=(TEXT, REQUIRED),
    timezone=(TEXT, REQUIRED),
    endpoint=(OPT_OBJ, None),
)
def setup_claim(
    box: Box,
    caller: Caller,
    code,
    address,
    language,
    box_name,
    admin_name,
    passphrase,
    timezone,
    endpoint,
):
    """The first-boot wizard in one step: all of it is checked before anything is kept."""
    from ..schema import BoxSettings

    where = str(_address(address))
    _, desired = box.head()
    if desired.box.claimed:
        raise Forbidden("this box has already been claimed")
    box.accounts.check_setup_code(code, where)

    def make(d):
        settings = BoxSettings.from_json(
            {"name": box_name, "language": language, "timezone": timezone}, ""
        )
        d = d.with_box(settings)
        if endpoint is not None:
            d = box.vpn.change_settings(d, endpoint=endpoint)
        return box.accounts.claim(d, admin_name, passphrase, language), None

    revision, _, outcomes = box.change(f"{admin_name} (claim)", "claim the box", make)
    box.runtime.kill_setup_code()
    announce(box.paths, None)
    token, user = box.accounts.login(box.head()[1], admin_name, passphrase, where)
    return {**_changed(revision, outcomes), "session": token, "user": box.accounts.user_json(user)}


@method(
    "auth.login",
    access="public",
    name=(TEXT, REQUIRED),
    passphrase=(TEXT, REQUIRED),
    address=(TEXT, REQUIRED),
    otp=(OPT_TEXT, None),
)
def login(box: Box, caller: Caller, name, passphrase, address, otp):
    _, desired = box.head()
    if not desired.box.claimed:
        raise Forbidden("this box is not claimed yet: claim it with its setup code first")
    token, user = box.accounts.login(desired, name, passphrase, str(_address(address)), otp)
    return {"session": token, "user": box.accounts.user_json(user)}


@method("auth.whoami", access="member")
def whoami(box: Box, caller: Caller):
    _, desired = box.head()
    user = desired.accounts.user(caller.name)
    return box.accounts.user_json(user) if user else {"name": caller.name, "role": caller.role}


@method("auth.logout", access="member", token=(TEXT, REQUIRED))
def logout(box: Box, caller: Caller, token):
    session = box.runtime.session(token)
    if session is not None and session.user == caller.name:
        box.runtime.close_session(token)
    return {}


@method("account.language", access="member", language=(OPT_TEXT, REQUIRED))
def account_language(box: Box, caller: Caller, language):
    box.accounts.set_language(box.head()[1], caller.name, language)
    return {"language": language}


@method(
    "account.passphrase",
    access="member",
    old_passphrase=(TEXT, REQUIRED),
    new_passphrase=(TEXT, REQUIRED),
)
def account_passphrase(box: Box, caller: Caller, old_passphrase, new_passphrase):
    box.accounts.set_passphrase(box.head()[1], caller.name, old_passphrase, new_passphrase)
    return {}


@method("account.totp.begin", access="member")
def totp_begin(box: Box, caller: Caller):
    return {"uri": box.accounts.totp_begin(box.head()[1], caller.name)}


@method("account.totp.confirm", access="member", otp=(TEXT, REQUIRED))
def totp_confirm(box: Box, caller: Caller, otp):
    revision, codes, outcomes = box.change(
        caller.who,
        f"second factor on for {caller.name}",
        lambda d: box.accounts.totp_confirm(d, caller.name, otp),
    )
    return {**_changed(revision, outcomes), "recovery_codes": codes}


@method("account.totp.disable", access="member", passphrase=(TEXT, REQUIRED))
def totp_disable(box: Box, caller: Caller, passphrase):
    return _apply(
        box,
        caller.who,
        f"second factor off for {caller.name}",
        lambda d: box.accounts.totp_disable(d, caller.name, passphrase),
    )


@method("users.list")
def users_list(box: Box, caller: Caller):
    _, desired = box.head()
    return [box.accounts.user_json(u) for u in desired.accounts.users]


@method(
    "users.add",
    name=(TEXT, REQUIRED),
    role=(TEXT, "member"),
    passphrase=(TEXT, REQUIRED),
    language=(OPT_TEXT, None),
)
def users_add(box: Box, caller: Caller, name, role, passphrase, language):
    return _apply(
        box,
        caller.who,
        f"add user {name}",
        lambda d: box.accounts.add_user(d, name, role, passphrase, language, _maker(caller)),
    )


def _maker(caller: Caller) -> str | None:
    """Who to record as having made something: a person, who may leave (not root)."""
    return None if caller.role == "root" else caller.name


@method("users.invite", name=(TEXT, REQUIRED), role=(TEXT, "member"))
def users_invite(box: Box, caller: Caller, name, role):
    """A link (valid 7 days, once) with which NAME sets their own passphrase and joins."""
    desired = box.head()[1]
    name, role = user_name(name), choice(role, "role", ROLES)
    if desired.accounts.user(name):
        raise Conflict(f"there is already a user called {name}", "name")
    token, expires = box.runtime.open_invite(name, role, _maker(caller))
    return {"token": token, "expires": expires, "name": name, "role": role}


@method("users.invitation", access="public", token=(TEXT, REQUIRED))
def users_invitation(box: Box, caller: Caller, token):
    """Who a live invitation is for (the page that accepts it shows the name)."""
    found = box.runtime.invite(token) if len(token) <= 128 else None
    if found is None:
        raise NotFound("this invitation is unknown, used or expired", "token")
    return {"name": found[0], "role": found[1], "box": box.head()[1].box.name}


@method(
    "users.join",
    access="public",
    token=(TEXT, REQUIRED),
    passphrase=(TEXT, REQUIRED),
    language=(OPT_TEXT, None),
)
def users_join(box: Box, caller: Caller, token, passphrase, language):
    """Accept an invitation: the account is made with the passphrase its owner chose,
    and the invitation dies. A refused passphrase leaves the invitation usable."""

    def join(desired):
        found = box.runtime.invite(token) if len(token) <= 128 else None
        if found is None:
            raise NotFound("this invitation is unknown, used or expired", "token")
        name, role, made_by = found
        return box.accounts.add_user(desired, name, role, passphrase, language, made_by), name

    revision, name, outcomes = box.change("invitation", "a new member accepted an invitation", join)
    box.runtime.close_invite(token)
    return {**_changed(revision, outcomes), "name": name}


@method("users.remove", name=(TEXT, REQUIRED))
def users_remove(box: Box, caller: Caller, name):
    revision, outcomes, ended = box.remove_members([name], caller, f"remove user {name}")
    return {**_changed(revision, outcomes), "ended": ended}


@method(
    "users.handover",
    storage_passphrase=(OPT_TEXT, None),
    new_recovery_key=(BOOL, False),
    rekey_devices=(BOOL, False),
)
def users_handover(box: Box, caller: Caller, storage_passphrase, new_recovery_key, rekey_devices):
    """The installer's visit is over: every installer account goes, with all it held
    and made (Box.remove_members). The accounts the installer created stay, listed for
    the household to confirm. With the storage's passphrase, a USB key the installer
    made stops opening the storage and (NEW_RECOVERY_KEY) the recovery key the installer
    may have seen is replaced; REKEY_DEVICES: new keys for the devices whose private
    keys the box made (and so handed out), each of which then needs its new config."""
    _, desired = box.head()
    installers = [u.name for u in desired.accounts.users if u.role == "installer"]
    if not installers:
        raise NotFound("there is no installer account")
    if caller.name in installers:  # before the storage's keys change
        raise Conflict("you cannot remove your own account", "name")
    usb_key = box.runtime.maker("usb_key") in installers
    storage: dict = {"usb_key_removed": False, "recovery_key": None}
    if (usb_key or new_recovery_key) and storage_passphrase is not None:
        # First: a wrong passphrase changes nothing at all.
        if usb_key:
            box.storage.remove_usb_key(desired, storage_passphrase)
            box.runtime.made("usb_key", None)
            storage["usb_key_removed"] = True
        if new_recovery_key:
            storage["recovery_key"] = box.storage.new_recovery_key(desired, storage_passphrase)
    elif new_recovery_key:
        raise Invalid(
            "the storage's passphrase is needed to replace its recovery key", "passphrase"
        )
    revision, outcomes, ended = box.remove_members(
        installers, caller, "handover: installer access ended"
    )
    rekeyed: list[dict] = []
    if rekey_devices:
        revision, rekeyed, more = box.rekey_devices(caller.who, "handover: new device keys")
        outcomes = outcomes + more
    created = [u.name for u in box.head()[1].accounts.users if u.created_by in installers]
    return {
        **_changed(revision, outcomes),
        "removed": installers,
        "ended": {**ended, "usb_key": storage["usb_key_removed"]},
        "usb_key_still_open": usb_key and not storage["usb_key_removed"],
        "recovery_key": storage["recovery_key"],
        "rekeyed": rekeyed,
        "created": created,
    }


@method(
    "box.settings.set",
    name=(TEXT, UNSET),
    language=(TEXT, UNSET),
    timezone=(TEXT, UNSET),
    manage_from_anywhere=(BOOL, UNSET),
    **WHY,
)
def box_settings_set(box: Box, caller: Caller, why, **changes):
    from ..schema import BoxSettings

    changes = {k: v for k, v in changes.items() if v is not UNSET}
    if not changes:
        raise Invalid("nothing to change")

    return _apply(
        box,
        caller.who,
        _why(why, "change box settings: " + ", ".join(sorted(changes))),
        lambda d: d.with_box(BoxSettings.from_json({**d.box.to_json(), **changes}, "")),
    )


@method("webui.reach", access="public")
def webui_reach(box: Box, caller: Caller):
    """What the web UI needs to tell a visitor at home (or on the VPN) from the Internet:
    the household's own networks (appliance/homenet.py) and whether it widened the
    management pages to anywhere."""
    _, desired = box.head()
    vpn = desired.vpn
    return {
        "networks": [str(n) for n in (vpn.ipv4_subnet, vpn.ipv6_subnet, *vpn.home_networks)],
        "anywhere": desired.box.manage_from_anywhere,
    }


# -- the VPN -----------------------------------------------------------------------


def _settings(box: Box) -> dict:
    _, desired = box.head()
    out = desired.vpn.to_json()
    del out["devices"]
    out["public_key"] = box.vpn.box_public_key()
    out["backend"] = box.backend.kind
    return out


def _visible_devices(box: Box, caller: Caller) -> list[Device]:
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
    token, expires = box.runtime.open_link(found.id, _maker(caller))
    return {"token": token, "expires": expires}


@method("vpn.device.redeem", access="public", token=(TEXT, REQUIRED))
def device_redeem(box: Box, caller: Caller, token):
    device_id = box.runtime.redeem_link(token) if len(token) <= 128 else None
    if device_id is None or box.head()[1].vpn.device(device_id) is None:
        raise NotFound("this link is unknown, used or expired", "token")
    file_name, config = box.device_config(device_id)
    return {"file_name": file_name, "config": config}


def _address(value):
    return address(value, "address")


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
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    if not changes:
        raise Invalid("nothing to change")
    answer = _apply(
        box,
        caller.who,
        _why(why, "change VPN settings: " + ", ".join(sorted(changes))),
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
        _why(why, f"add device “{name}”"),
        lambda d: box.vpn.add_device(d, name, mode, dns, preshared_key, public_key, owner),
    )
    return {**_changed(revision, outcomes), "device": device.to_json()}


@method("vpn.device.list", access="member")
def device_list(box: Box, caller: Caller):
    return [d.to_json() for d in _visible_devices(box, caller)]


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
        _why(why, f"change device {ref}"),
        lambda d: box.vpn.update_device(d, ref, name, mode, dns),
    )
    return {**_changed(revision, outcomes), "device": updated.to_json()}


@method("vpn.device.remove", access="member", device=((int, str), REQUIRED), **WHY)
def device_remove(box: Box, caller: Caller, device, why):
    found = _device(box, caller, device)
    revision, gone, outcomes = box.change(
        caller.who,
        _why(why, f"remove device “{found.name}”"),
        lambda d: box.vpn.remove_device(d, found.id),
    )
    return {**_changed(revision, outcomes), "device": gone.to_json()}


@method("vpn.device.config", access="member", device=((int, str), REQUIRED))
def device_config(box: Box, caller: Caller, device):
    file_name, config = box.device_config(_device(box, caller, device).id)
    return {"file_name": file_name, "config": config}


# -- mail ---------------------------------------------------------------------------


@method("mail.settings.get", access="member")
def mail_settings_get(box: Box, caller: Caller):
    mail = box.data_settings().mail.to_json()
    mail.pop("app_passwords")
    return mail


@method(
    "mail.settings.set",
    enabled=(BOOL, UNSET),
    domain=(TEXT, UNSET),
    max_message_mib=(INT, UNSET),
    quota_mib=(INT, UNSET),
    delete_fetched_after_days=(INT, UNSET),
    encrypted_only=(BOOL, UNSET),
    smarthost=(OPT_OBJ, UNSET),
    smarthost_password=(OPT_TEXT, None),
    **WHY,
)
def mail_settings_set(box: Box, caller: Caller, why, smarthost_password, **changes):
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    if not changes and smarthost_password is None:
        raise Invalid("nothing to change")
    answer = _apply(
        box,
        caller.who,
        _why(why, "change mail settings: " + ", ".join(sorted(changes))),
        lambda d: box.mail.change_settings(d, smarthost_password, **changes),
    )
    return {**answer, "settings": mail_settings_get(box, caller)}


def _owner(box: Box, caller: Caller, owner) -> str:
    """Members act for themselves; managers (and root) for anyone."""
    if owner is None or owner == caller.name:
        if caller.role == "root":
            raise Invalid("say which member this is for", "owner")
        return caller.name
    if not caller.manages_box:
        raise Forbidden("you can only manage your own passwords")
    return owner


@method("mail.password.add", access="member", label=(TEXT, REQUIRED), owner=(OPT_TEXT, None), **WHY)
def mail_password_add(box: Box, caller: Caller, label, owner, why):
    who = _owner(box, caller, owner)
    made_by = None if caller.role == "root" or who == caller.name else caller.name
    revision, (entry, password), outcomes = box.change(
        caller.who,
        _why(why, f"add an app password for {who}"),
        lambda d: box.mail.add_password(d, who, label, made_by),
    )
    desired = box.head()[1]
    address = desired.mail.address(who)
    return {
        **_changed(revision, outcomes),
        "app_password": entry.to_json(),
        "address": address,
        "password": password,
        "client": client_settings(desired.mail.domain, address, password, desired.chat.enabled),
    }


@method("mail.password.list", access="member", owner=(OPT_TEXT, None))
def mail_password_list(box: Box, caller: Caller, owner):
    who = None if owner is None and caller.manages_box else _owner(box, caller, owner)
    return [p.to_json() for p in box.data_settings().mail.app_passwords if who in (None, p.owner)]


@method("mail.password.remove", access="member", id=(INT, REQUIRED), **WHY)
def mail_password_remove(box: Box, caller: Caller, id, why):
    owner = None if caller.manages_box else caller.name
    return _apply(
        box,
        caller.who,
        _why(why, f"revoke app password {id}"),
        lambda d: box.mail.remove_password(d, id, owner),
    )


@method("chat.settings.get", access="member")
def chat_settings_get(box: Box, caller: Caller):
    return box.data_settings().chat.to_json()


@method(
    "chat.settings.set",
    enabled=(BOOL, UNSET),
    archive_days=(INT, UNSET),
    upload_mib=(INT, UNSET),
    upload_days=(INT, UNSET),
    **WHY,
)
def chat_settings_set(box: Box, caller: Caller, why, **changes):
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    if not changes:
        raise Invalid("nothing to change")
    answer = _apply(
        box,
        caller.who,
        _why(why, "change chat settings: " + ", ".join(sorted(changes))),
        lambda d: box.mail.change_chat(d, **changes),
    )
    return {**answer, "settings": chat_settings_get(box, caller)}


@method("mail.autoconfig", access="public")
def mail_autoconfig(box: Box, caller: Caller):
    """What mail apps fetch to set an account up (public: it holds no secret)."""
    desired = box.head()[1]
    if not desired.mail.enabled:
        raise NotFound("mail is off")
    return {"xml": autoconfig_xml(desired.mail.domain, desired.box.name).decode()}


@method("mail.dns", access="manager", check=(BOOL, False))
def mail_dns(box: Box, caller: Caller, check):
    """The records to publish; with CHECK, what the box's resolver finds for each."""
    records = box.mail.dns_records(box.data_settings())
    if not check:
        return records
    from ..mail import dnscheck  # dnspython is ~5 MB the agent needs only here

    resolv_conf = box.system.read("/etc/resolv.conf") or b""
    return dnscheck.check(records, dnscheck.nameservers(resolv_conf.decode("utf-8", "replace")))


# -- storage ------------------------------------------------------------------------


@method("storage.status")
def storage_status(box: Box, caller: Caller):
    return box.storage.status(box.head()[1])


@method("storage.disks")
def storage_disks(box: Box, caller: Caller):
    volume = box.head()[1].storage.volume
    return [
        {**d.to_json(), "is_storage": volume is not None and d.detail == volume.uuid}
        for d in box.storage.disks()
    ]


@method("storage.settings.set", allow_unencrypted=(BOOL, REQUIRED), **WHY)
def storage_settings_set(box: Box, caller: Caller, allow_unencrypted, why):
    what = "keep data unencrypted" if allow_unencrypted else "keep data only on encrypted storage"
    return _apply(
        box,
        caller.who,
        _why(why, what),
        lambda d: box.storage.change_settings(d, allow_unencrypted),
    )


@method(
    "storage.format",
    disk=(TEXT, REQUIRED),
    confirm=(TEXT, REQUIRED),
    passphrase=(TEXT, REQUIRED),
    cipher=(OPT_TEXT, None),
)
def storage_format(box: Box, caller: Caller, disk, confirm, passphrase, cipher):
    """Erase DISK (CONFIRM: its name, typed) and make it the encrypted storage; the
    recovery key is in the answer, this once."""

    def make(d):
        made = box.storage.format(
            d, disk, confirm, passphrase, cipher, stop_users=box.stop_data_services
        )
        box.forget_facts()  # the new volume is mounted: mail, chat, files may run now
        return made

    revision, key, outcomes = box.change(
        caller.who, f"make disk {disk} the encrypted storage", make
    )
    return {
        **_changed(revision, outcomes),
        "recovery_key": key,
        "status": box.storage.status(box.head()[1]),
    }


@method("storage.unlock", key=(TEXT, REQUIRED))
def storage_unlock(box: Box, caller: Caller, key):
    with box.lock:
        slot = box.storage.unlock(box.head()[1], key)
        outcomes = box.reconcile()
    return {
        "slot": slot,
        "reconcile": [o.to_json() for o in outcomes],
        "status": box.storage.status(box.head()[1]),
    }


@method("storage.lock")
def storage_lock(box: Box, caller: Caller):
    outcomes = box.lock_storage()
    return {
        "reconcile": [o.to_json() for o in outcomes],
        "status": box.storage.status(box.head()[1]),
    }


@method("storage.passphrase", old=(TEXT, REQUIRED), new=(TEXT, REQUIRED))
def storage_passphrase(box: Box, caller: Caller, old, new):
    box.storage.change_passphrase(box.head()[1], old, new)
    return {"changed": True}


@method("storage.recovery_key", passphrase=(TEXT, REQUIRED))
def storage_recovery_key(box: Box, caller: Caller, passphrase):
    """A new recovery key; the old one stops working."""
    return {"recovery_key": box.storage.new_recovery_key(box.head()[1], passphrase)}


@method("storage.usb_key.add", disk=(TEXT, REQUIRED), passphrase=(TEXT, REQUIRED))
def storage_usb_key_add(box: Box, caller: Caller, disk, passphrase):
    """A key file on the USB stick DISK that unlocks the storage when the box starts."""
    box.storage.add_usb_key(box.head()[1], disk, passphrase)
    box.runtime.made("usb_key", _maker(caller))  # an installer's ends at the handover
    return {"status": box.storage.status(box.head()[1])}


@method("storage.usb_key.remove", passphrase=(TEXT, REQUIRED))
def storage_usb_key_remove(box: Box, caller: Caller, passphrase):
    box.storage.remove_usb_key(box.head()[1], passphrase)
    box.runtime.made("usb_key", None)
    return {"status": box.storage.status(box.head()[1])}


@method("box.factory_reset", access="root", hardware=True)
def box_factory_reset(box: Box, caller: Caller):
    """Forget the household: accounts, secrets, devices, history; the disks' contents
    stay (appliance/reset.py). The hardware service asks for it after the button."""
    from ..reset import factory_reset

    factory_reset(box)
    return {"claimed": False}


# -- files --------------------------------------------------------------------------


@method("files.settings.set", enabled=(BOOL, REQUIRED), departed=(OPT_TEXT, None), **WHY)
def files_settings_set(box: Box, caller: Caller, enabled, departed, why):
    """DEPARTED: "archive" or "delete" a departed member's folder (None: as it was)."""
    said = f"turn the file share {'on' if enabled else 'off'}"
    if departed is not None:
        said += f"; a departed member's folder: {departed}"
    departed = box.head()[1].files.departed if departed is None else departed
    settings = FilesSettings.from_json({"enabled": enabled, "departed": departed})
    return _apply(
        box,
        caller.who,
        _why(why, said),
        lambda d: d.with_files(settings),
    )


@method("files.connection", access="member", owner=(OPT_TEXT, None))
def files_connection(box: Box, caller: Caller, owner):
    """How a member's apps reach the share: address, user, the share's host key."""
    return box.files.connection(box.head()[1], _owner(box, caller, owner))


@method("files.password", access="member", owner=(OPT_TEXT, None))
def files_password(box: Box, caller: Caller, owner):
    """A new files password (the old one stops working), shown this once."""
    who = _owner(box, caller, owner)
    with box.lock:
        desired = box.head()[1]
        return {
            **box.files.connection(desired, who),
            "password": box.files.new_password(desired, who),
            "has_password": True,
        }


# -- the installer's SSH -------------------------------------------------------------


@method("ssh.access")
def ssh_access(box: Box, caller: Caller):
    """The keys that may log in as root, and the box's SSH host key to check."""
    return box.ssh.access(box.head()[1])


@method("ssh.key.add", key=(TEXT, REQUIRED), name=(OPT_TEXT, None), **WHY)
def ssh_key_add(box: Box, caller: Caller, key, name, why):
    """A public key that may log in as root over SSH; the first one turns SSH on. NAME
    defaults to the key's comment (alice@laptop)."""
    added = SshKey.from_json(
        {
            "key": key,
            "name": key_comment(key) if name is None else name,
            "owner": None if caller.role == "root" else caller.name,
        },
        "",
    )
    answer = _apply(
        box,
        caller.who,
        _why(why, f"add SSH key {added.name!r}"),
        lambda d: d.with_ssh(d.ssh.with_key(added)),
    )
    return {**answer, "ssh": box.ssh.access(box.head()[1])}


@method("ssh.key.remove", fingerprint=(TEXT, REQUIRED), **WHY)
def ssh_key_remove(box: Box, caller: Caller, fingerprint, why):
    """The last key gone turns SSH off."""
    keys = box.head()[1].ssh.keys
    gone = next((k for k in keys if key_fingerprint(k.key) == fingerprint), None)
    if gone is None:
        raise NotFound("there is no SSH key with that fingerprint", "fingerprint")
    answer = _apply(
        box,
        caller.who,
        _why(why, f"remove SSH key {gone.name!r}"),
        lambda d: d.with_ssh(SshSettings(tuple(k for k in d.ssh.keys if k != gone))),
    )
    return {**answer, "ssh": box.ssh.access(box.head()[1])}


# -- hardware -----------------------------------------------------------------------


@method("hardware.status", access="member")
def hardware_status(box: Box, caller: Caller):
    """The board and its optional devices (clock, sensor, display, watchdog, GPIO):
    absent hardware is reported, never an error."""
    from hardware.boards import detect
    from hardware.status import survey

    return survey(detect()).to_dict()


def call(box: Box, caller: Caller, name, params) -> Any:
    if not isinstance(name, str) or name not in METHODS:
        raise NotFound(f"there is no method {name!r}", "method")
    m = METHODS[name]
    check_access(m, caller, box.head()[1].box.claimed)
    return m.run(box, caller, **check_params(m, params if params is not None else {}))
