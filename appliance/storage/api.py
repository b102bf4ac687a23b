"""The encrypted storage's API methods."""

from ..accounts.service import Caller
from ..api.methods import (
    BOOL,
    OPT_TEXT,
    REQUIRED,
    TEXT,
    WHY,
    change,
    changed,
    maker,
    method,
    reason,
)
from ..box import Box


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
    return change(
        box,
        caller.who,
        reason(why, what),
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
        **changed(revision, outcomes),
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
    box.runtime.made("usb_key", maker(caller))  # an installer's ends at the handover
    return {"status": box.storage.status(box.head()[1])}


@method("storage.usb_key.remove", passphrase=(TEXT, REQUIRED))
def storage_usb_key_remove(box: Box, caller: Caller, passphrase):
    box.storage.remove_usb_key(box.head()[1], passphrase)
    box.runtime.made("usb_key", None)
    return {"status": box.storage.status(box.head()[1])}
