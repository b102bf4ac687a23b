"""`commonsbox storage`: the household's encrypted storage."""

import sys

from ..api.client import Client
from ..errors import Invalid
from ..terminal import human_bytes, secret


def cmd_storage_status(api: Client, args) -> object:
    return api.call("storage.status")


def cmd_storage_disks(api: Client, args) -> object:
    return api.call("storage.disks")


def cmd_storage_format(api: Client, args) -> object:
    disk = next((d for d in api.call("storage.disks") if d["name"] == args.disk), None)
    if disk is None:
        raise Invalid(f"there is no disk {args.disk!r} (see: commonsbox storage disks)", "disk")
    confirm = args.confirm
    if confirm is None:
        print(
            f"{disk['name']}: {disk['confirm_name']}, {human_bytes(disk['size'])}, holds: "
            f"{disk['contents']}. EVERYTHING ON IT WILL BE ERASED.",
            file=sys.stderr,
        )
        confirm = input(f"Type {disk['confirm_name']!r} to erase it: ")
    return api.call(
        "storage.format",
        disk=args.disk,
        confirm=confirm,
        cipher=args.cipher,
        passphrase=secret(args.passphrase_file, "the household's storage passphrase", twice=True),
    )


def cmd_storage_unlock(api: Client, args) -> object:
    return api.call("storage.unlock", key=secret(args.key_file, "passphrase or recovery key"))


def cmd_storage_lock(api: Client, args) -> object:
    return api.call("storage.lock")


def cmd_storage_passphrase(api: Client, args) -> object:
    return api.call(
        "storage.passphrase",
        old=secret(args.old_file, "current passphrase"),
        new=secret(args.new_file, "new passphrase", twice=True),
    )


def cmd_storage_recovery_key(api: Client, args) -> object:
    return api.call("storage.recovery_key", passphrase=secret(args.passphrase_file, "passphrase"))


def cmd_storage_usb_key(api: Client, args) -> object:
    passphrase = secret(args.passphrase_file, "passphrase")
    if args.action == "remove":
        return api.call("storage.usb_key.remove", passphrase=passphrase)
    if args.disk is None:
        raise Invalid("name the USB stick (see: commonsbox storage disks)", "disk")
    return api.call("storage.usb_key.add", disk=args.disk, passphrase=passphrase)


def cmd_storage_unencrypted(api: Client, args) -> object:
    return api.call("storage.settings.set", allow_unencrypted=args.choice == "on", why=args.why)


def print_storage(status: dict) -> None:
    v = status["volume"]
    if v is None:
        print(
            "encrypted storage: none yet"
            + (
                "; data kept unencrypted by the household's choice"
                if status["allow_unencrypted"]
                else "; mail and chat wait for it"
            )
        )
    else:
        state = ("unlocked" if v["mounted"] else "LOCKED") if v["present"] else "DISK MISSING"
        print(f"encrypted storage: {v['disk']} ({v['cipher']}): {state}")
        print(f"  key slots: {', '.join(f'{k} ({kdf})' for k, kdf in v['key_slots'].items())}")
    print(f"  this box's cipher: {status['suggested_cipher']} ({status['why']})")


def show_storage(result: dict) -> None:
    print_storage(result.get("status", result))


def show_disks(result: list) -> None:
    for d in result:
        use = "the box's own" if d["system"] else ("STORAGE" if d["is_storage"] else "")
        print(
            f"{d['name']:<8} {human_bytes(d['size']):>10}  {'USB ' if d['usb'] else ''}"
            f"{d['confirm_name']:<28} {d['contents']} {d['detail']} {use}"
        )


def show_recovery_key(result: dict) -> None:
    if "status" in result:
        print_storage(result["status"])
    print(f"RECOVERY KEY: {result['recovery_key']}")
    print(
        "  write it down or print it, and keep it away from the box: it is shown "
        "this once, and opens the storage if the passphrase is lost"
    )


def commands(sub, leaf) -> None:
    st = sub.add_parser("storage", help="the household's encrypted storage").add_subparsers(
        dest="storage_cmd", required=True
    )
    leaf(
        st,
        "status",
        cmd_storage_status,
        "the encrypted storage: locked, unlocked, key slots",
        show_storage,
    )
    leaf(st, "disks", cmd_storage_disks, "the disks the box sees, and what they hold", show_disks)
    p = leaf(
        st,
        "format",
        cmd_storage_format,
        "ERASE a disk and make it the encrypted storage",
        show_recovery_key,
    )
    p.add_argument("disk", help="its name in `storage disks` (sda)")
    p.add_argument("--confirm", help="the disk's name as `storage disks` shows it (else asked)")
    p.add_argument(
        "--cipher",
        choices=("aes-xts", "adiantum"),
        help="instead of the one chosen for this box's processor",
    )
    p.add_argument("--passphrase-file")
    p = leaf(
        st, "unlock", cmd_storage_unlock, "unlock with the passphrase or recovery key", show_storage
    )
    p.add_argument("--key-file")
    leaf(st, "lock", cmd_storage_lock, "stop mail and chat, then lock the storage", show_storage)
    p = leaf(st, "passphrase", cmd_storage_passphrase, "change the storage passphrase")
    p.add_argument("--old-file")
    p.add_argument("--new-file")
    p = leaf(
        st,
        "recovery-key",
        cmd_storage_recovery_key,
        "a new recovery key (the old one dies)",
        show_recovery_key,
    )
    p.add_argument("--passphrase-file")
    p = leaf(
        st,
        "usb-key",
        cmd_storage_usb_key,
        "a key on a USB stick that unlocks the storage when the box starts",
        show_storage,
    )
    p.add_argument("action", choices=("add", "remove"))
    p.add_argument("disk", nargs="?", help="the stick's name in `storage disks` (sdb)")
    p.add_argument("--passphrase-file")
    p = leaf(
        st,
        "unencrypted",
        cmd_storage_unencrypted,
        "whether mail and chat may keep data unencrypted when there is no encrypted disk",
    )
    p.add_argument("choice", choices=("on", "off"))
    p.add_argument("--why")
