"""LUKS2 volumes through cryptsetup: format, read the header, manage key slots, open, close.

Keys reach cryptsetup through pipes it reads as /dev/fd/N: never a file on a disk,
never the command line (which every user can read in /proc).
"""

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import Conflict, SystemFailure, Unauthorized
from ..system import System
from .cipher import Cipher

LABEL = "commonsbox"
# What each key slot holds: the household's passphrase, the recovery key written down
# at setup, and the optional key on a USB stick for unattended boots.
PASSPHRASE, RECOVERY, USB = 0, 1, 2
SLOT_NAMES = {PASSPHRASE: "passphrase", RECOVERY: "recovery key", USB: "USB key"}
# Argon2id, as cryptsetup measures it on the box itself (about 2 s there): a guess costs
# an attacker that much too. Tests on files pass a cheap KDF instead.
KDF = ("--pbkdf", "argon2id")
BAD_KEY = 2  # cryptsetup's exit code for "no key available with this passphrase"


@dataclass(frozen=True)
class Header:
    uuid: str
    label: str
    cipher: str  # cryptsetup's spec of the data segment
    key_bits: int
    slots: dict[int, str]  # slot -> its key derivation (argon2id, pbkdf2)


@contextmanager
def _pipes(*keys: str):
    """Each key in a pipe of its own: ([/dev/fd/N ...], (N ...))."""
    fds = []
    try:
        for key in keys:
            r, w = os.pipe()
            fds.append(r)
            os.write(w, key.encode())  # a key is far smaller than a pipe's buffer
            os.close(w)
        yield [f"/dev/fd/{r}" for r in fds], tuple(fds)
    finally:
        for r in fds:
            os.close(r)


def _cryptsetup(system: System, args: list[str], keys: tuple[str, ...] = (), timeout=300):
    """cryptsetup with `{0}`, `{1}`... in ARGS standing for the pipes of KEYS."""
    with _pipes(*keys) as (paths, fds):
        return system.run(
            ["cryptsetup", *(a.format(*paths) for a in args)],
            check=False,
            timeout=timeout,
            pass_fds=fds,
        )


def _failed(done, what: str) -> SystemFailure:
    return SystemFailure(f"{what} failed: {(done.stderr or done.stdout).strip()[-300:]}")


def format_volume(
    system: System, device: str, passphrase: str, cipher: Cipher, kdf: tuple[str, ...] = KDF
) -> None:
    """A new LUKS2 header on DEVICE (everything on it is lost), the passphrase in slot 0."""
    done = _cryptsetup(
        system,
        [
            "luksFormat",
            "--type",
            "luks2",
            "--batch-mode",
            "--label",
            LABEL,
            "--cipher",
            cipher.spec,
            "--key-size",
            str(cipher.key_bits),
            "--key-slot",
            str(PASSPHRASE),
            *kdf,
            "--key-file",
            "{0}",
            device,
        ],
        (passphrase,),
    )
    if done.returncode:
        raise _failed(done, "formatting")


def header(system: System, device: str) -> Header | None:
    """DEVICE's LUKS2 header, or None if it has none."""
    text = system.run(["cryptsetup", "luksDump", device], check=False)
    if text.returncode:
        return None
    meta = json.loads(system.run(["cryptsetup", "luksDump", "--dump-json-metadata", device]).stdout)
    segment = next(iter(meta["segments"].values()))

    def field(name: str) -> str:
        found = re.search(rf"^{name}:\s*(.*)$", text.stdout, re.M)
        return found[1] if found else ""

    label = field("Label")
    return Header(
        uuid=field("UUID"),
        label="" if label == "(no label)" else label,
        cipher=segment["encryption"],
        key_bits=8 * next(iter(meta["keyslots"].values()))["key_size"],
        slots={int(n): s["kdf"]["type"] for n, s in meta["keyslots"].items()},
    )


def which_slot(system: System, device: str, key: str) -> int | None:
    """The slot KEY opens, or None if it opens none."""
    done = _cryptsetup(
        system, ["open", "--test-passphrase", "--verbose", "--key-file", "{0}", device], (key,)
    )
    if done.returncode == BAD_KEY:
        return None
    if done.returncode:
        raise _failed(done, "checking the key")
    found = re.search(r"Key slot (\d+) unlocked", done.stdout + done.stderr)
    return int(found[1]) if found else None


def _rekey(
    system: System,
    action: str,
    device: str,
    existing: str,
    new: str,
    slot: int,
    kdf: tuple[str, ...],
    what: str,
) -> None:
    done = _cryptsetup(
        system,
        [action, "--batch-mode", "--key-slot", str(slot), *kdf, "--key-file", "{0}", device, "{1}"],
        (existing, new),
    )
    if done.returncode == BAD_KEY:
        raise Unauthorized("that key does not open this disk", "key")
    if done.returncode:
        raise _failed(done, what)


def add_key(
    system: System, device: str, existing: str, new: str, slot: int, kdf: tuple[str, ...] = KDF
) -> None:
    """NEW into SLOT (which must be free), authorised by an EXISTING key."""
    _rekey(system, "luksAddKey", device, existing, new, slot, kdf, "adding the key")


def change_key(
    system: System, device: str, old: str, new: str, slot: int, kdf: tuple[str, ...] = KDF
) -> None:
    """Replace SLOT's key OLD with NEW (cryptsetup writes the new one before it erases
    the old: a power cut leaves one of them working)."""
    _rekey(system, "luksChangeKey", device, old, new, slot, kdf, "changing the key")


def remove_key(system: System, device: str, slot: int, remaining: str) -> None:
    """Forget SLOT's key; REMAINING, a key of another slot, authorises it and must keep
    opening the disk (so the last key can never go)."""
    used = which_slot(system, device, remaining)
    if used is None:
        raise Unauthorized("that key does not open this disk", "key")
    if used == slot:
        raise Conflict("give a key from another slot: this one is being removed", "key")
    done = _cryptsetup(system, ["luksKillSlot", "--batch-mode", device, str(slot)])
    if done.returncode:
        raise _failed(done, "removing the key")


def open_volume(system: System, device: str, name: str, key: str) -> int:
    """Unlock DEVICE as /dev/mapper/NAME; returns the slot that opened it."""
    done = _cryptsetup(
        system, ["open", "--type", "luks2", "--verbose", "--key-file", "{0}", device, name], (key,)
    )
    if done.returncode == BAD_KEY:
        raise Unauthorized("that passphrase or key does not open this disk", "key")
    if done.returncode:
        raise _failed(done, "unlocking")
    found = re.search(r"Key slot (\d+) unlocked", done.stdout + done.stderr)
    return int(found[1]) if found else -1


def close_volume(system: System, name: str) -> None:
    done = system.run(["cryptsetup", "close", name], check=False)
    if done.returncode and "is not active" not in done.stderr:
        raise _failed(done, "locking")
