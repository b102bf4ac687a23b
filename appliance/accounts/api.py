"""The accounts' API methods: claiming the box, logging in, one's own account, and the
household's members (invitations, removal, the installer's handover)."""

from ..api.methods import (
    BOOL,
    HARDWARE,
    OPT_OBJ,
    OPT_TEXT,
    REQUIRED,
    TEXT,
    change,
    changed,
    client_address,
    maker,
    method,
)
from ..box import Box
from ..console import announce
from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..validate import choice
from .schema import ROLES, user_name
from .service import Caller


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

    where = str(client_address(address))
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
    return {**changed(revision, outcomes), "session": token, "user": box.accounts.user_json(user)}


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
    token, user = box.accounts.login(desired, name, passphrase, str(client_address(address)), otp)
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
    return {**changed(revision, outcomes), "recovery_codes": codes}


@method("account.totp.disable", access="member", passphrase=(TEXT, REQUIRED))
def totp_disable(box: Box, caller: Caller, passphrase):
    return change(
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
    return change(
        box,
        caller.who,
        f"add user {name}",
        lambda d: box.accounts.add_user(d, name, role, passphrase, language, maker(caller)),
    )


@method("users.invite", name=(TEXT, REQUIRED), role=(TEXT, "member"))
def users_invite(box: Box, caller: Caller, name, role):
    """A link (valid 7 days, once) with which NAME sets their own passphrase and joins."""
    desired = box.head()[1]
    name, role = user_name(name), choice(role, "role", ROLES)
    if desired.accounts.user(name):
        raise Conflict(f"there is already a user called {name}", "name")
    token, expires = box.runtime.open_invite(name, role, maker(caller))
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
    return {**changed(revision, outcomes), "name": name}


@method("users.remove", name=(TEXT, REQUIRED))
def users_remove(box: Box, caller: Caller, name):
    revision, outcomes, ended = box.remove_members([name], caller, f"remove user {name}")
    return {**changed(revision, outcomes), "ended": ended}


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
        **changed(revision, outcomes),
        "removed": installers,
        "ended": {**ended, "usb_key": storage["usb_key_removed"]},
        "usb_key_still_open": usb_key and not storage["usb_key_removed"],
        "recovery_key": storage["recovery_key"],
        "rekeyed": rekeyed,
        "created": created,
    }
