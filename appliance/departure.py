"""What a person who leaves loses, and what a restore may bring back.

The desired state says what a person holds (each slice in schema.OWNED drops it:
``Desired.without_member``); this module adds what lives apart from the document: the
secrets behind what they held, which go with them, and the rule a restore follows: an
older revision comes back without anything held by someone who is not a member now, and
without anything whose secret is gone (it could only come back half-alive: a device
whose preshared key is lost would stop the VPN's reconcile; an app password without its
hash would be listed but never work).
"""

from dataclasses import replace

from .mail.capability import password_secret
from .schema import Desired
from .secrets import SecretStore
from .vpn.capability import device_key_name, psk_name

# Where each capability keeps a person's own secrets, by their name.
PERSONAL_SECRETS = ("account/{name}/", "mail/app/{name}/")


def dropped_secrets(before: Desired, after: Desired) -> list[str]:
    """The secrets of the devices and app passwords BEFORE held and AFTER does not."""
    kept_devices = {d.id for d in after.vpn.devices}
    kept_passwords = {(p.owner, p.slot) for p in after.mail.app_passwords}
    return [
        name
        for d in before.vpn.devices
        if d.id not in kept_devices
        for name in (device_key_name(d.id), psk_name(d.id))
    ] + [
        password_secret(p.owner, p.slot)
        for p in before.mail.app_passwords
        if (p.owner, p.slot) not in kept_passwords
    ]


def forget_departed(
    secrets: SecretStore, names: list[str], before: Desired, after: Desired
) -> None:
    """The secrets of NAMES, who left between BEFORE and AFTER, and of what they held."""
    doomed = dropped_secrets(before, after)
    for name in names:
        for prefix in PERSONAL_SECRETS:
            doomed += secrets.get_many(prefix.format(name=name)).keys()
    for secret in doomed:
        secrets.delete(secret)


def restorable(old: Desired, current: Desired, secrets: SecretStore, at: float) -> Desired:
    """OLD (the revision of time AT being restored, with today's accounts) as it may
    come back: nothing held by someone who is not a member now (nor by one who left
    and whose name a new member has since), nothing whose secret is gone. The box's
    own devices (no owner) come back as they were."""
    members = {u.name for u in current.accounts.users if u.created is None or u.created <= at}
    for name in sorted(old.owners() - members):
        old = old.without_member(name)
    device_keys = secrets.get_many("vpn/device/").keys()
    psks = secrets.get_many("vpn/psk/").keys()
    now = {d.id: d for d in current.vpn.devices}
    devices = []
    for d in old.vpn.devices:
        if d.key_holder == "box" and device_key_name(d.id) not in device_keys:
            continue
        if d.preshared_key and psk_name(d.id) not in psks:
            continue
        same = now.get(d.id)
        if same is not None and d.key_holder == "box" and same.public_key != d.public_key:
            d = replace(d, public_key=same.public_key)  # re-keyed since: its key is the new one
        devices.append(d)
    hashes = secrets.get_many("mail/app/").keys() if old.mail.app_passwords else set()
    app_passwords = tuple(
        p for p in old.mail.app_passwords if password_secret(p.owner, p.slot) in hashes
    )
    return old.replace(vpn=old.vpn.with_devices(devices)).replace(
        mail=replace(old.mail, app_passwords=app_passwords)
    )
