"""Passphrases: argon2id hashes, and a strength check a household can live with."""

import functools
import hmac
import re

from ..errors import Invalid
from ..secrets import Secret

MIN_LENGTH, MAX_LENGTH = 12, 256
_COMMON = {
    "password",
    "passphrase",
    "commonsbox",
    "qwerty",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "123456",
    "dragon",
    "monkey",
    "football",
    "sunshine",
    "princess",
}


@functools.cache
def _argon2():
    """argon2-cffi, loaded at the first login rather than at start: an idle box has
    no use for it. Returns (hasher, the errors a bad hash raises, a dummy hash)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    try:
        from argon2.exceptions import InvalidHashError
    except ImportError:  # argon2-cffi < 21.2, as Debian 13 ships it
        from argon2.exceptions import InvalidHash as InvalidHashError

    # OWASP's argon2id baseline (19 MiB, 2 passes): ~40 ms here, under a second on a Pi.
    hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    # Verified against when the user does not exist, so timing does not tell.
    dummy = hasher.hash("not a real passphrase, only for timing")
    return hasher, (VerificationError, InvalidHashError), dummy


def check_strength(passphrase, name: str = "", fld: str = "passphrase") -> str:
    """At least 12 characters, not mostly one word from the usual lists, not the name."""
    if not isinstance(passphrase, str):
        raise Invalid("the passphrase must be text", fld)
    if len(passphrase) < MIN_LENGTH:
        raise Invalid(f"the passphrase must have at least {MIN_LENGTH} characters", fld)
    if len(passphrase) > MAX_LENGTH:
        raise Invalid(f"the passphrase must have at most {MAX_LENGTH} characters", fld)
    if any(ch in passphrase for ch in "\x00\r\n"):
        raise Invalid("the passphrase contains a control character", fld)
    letters = re.sub(r"[^a-z]", "", passphrase.lower())
    if (
        len(set(passphrase)) < 6
        or (name and name.lower() in passphrase.lower())
        or any(letters.startswith(w) and len(letters) - len(w) < 6 for w in _COMMON)
    ):
        raise Invalid("the passphrase is too easy to guess: try a few unrelated words", fld)
    return passphrase


def hash_passphrase(passphrase: str) -> Secret:
    return Secret(_argon2()[0].hash(passphrase))


def verify(stored: Secret | None, passphrase: str) -> bool:
    hasher, errors, dummy = _argon2()
    try:
        return hasher.verify(stored.reveal() if stored else dummy, passphrase) and bool(stored)
    except errors:
        return False


def same_code(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
