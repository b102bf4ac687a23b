"""Mail's API methods: its settings, app passwords, autoconfig and the DNS records."""

from ..accounts.service import Caller
from ..api.methods import (
    BOOL,
    INT,
    OPT_OBJ,
    OPT_TEXT,
    REQUIRED,
    TEXT,
    WHY,
    acting_for,
    change,
    changed,
    method,
    reason,
)
from ..box import Box
from ..errors import Invalid, NotFound
from ..validate import UNSET
from .autoconfig import autoconfig_xml
from .service import client_settings


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
    answer = change(
        box,
        caller.who,
        reason(why, "change mail settings: " + ", ".join(sorted(changes))),
        lambda d: box.mail.change_settings(d, smarthost_password, **changes),
    )
    return {**answer, "settings": mail_settings_get(box, caller)}


@method("mail.password.add", access="member", label=(TEXT, REQUIRED), owner=(OPT_TEXT, None), **WHY)
def mail_password_add(box: Box, caller: Caller, label, owner, why):
    who = acting_for(box, caller, owner)
    made_by = None if caller.role == "root" or who == caller.name else caller.name
    revision, (entry, password), outcomes = box.change(
        caller.who,
        reason(why, f"add an app password for {who}"),
        lambda d: box.mail.add_password(d, who, label, made_by),
    )
    desired = box.head()[1]
    address = desired.mail.address(who)
    return {
        **changed(revision, outcomes),
        "app_password": entry.to_json(),
        "address": address,
        "password": password,
        "client": client_settings(desired.mail.domain, address, password, desired.chat.enabled),
    }


@method("mail.password.list", access="member", owner=(OPT_TEXT, None))
def mail_password_list(box: Box, caller: Caller, owner):
    who = None if owner is None and caller.manages_box else acting_for(box, caller, owner)
    return [p.to_json() for p in box.data_settings().mail.app_passwords if who in (None, p.owner)]


@method("mail.password.remove", access="member", id=(INT, REQUIRED), **WHY)
def mail_password_remove(box: Box, caller: Caller, id, why):
    owner = None if caller.manages_box else caller.name
    return change(
        box,
        caller.who,
        reason(why, f"revoke app password {id}"),
        lambda d: box.mail.remove_password(d, id, owner),
    )


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
