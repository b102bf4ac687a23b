"""Passphrases: argon2id hashes, and a strength check a household can live with."""

import hmac
import re

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

try:
    from argon2.exceptions import InvalidHashError
except ImportError:  # argon2-cffi < 21.2, as Debian 13 ships it
    from argon2.exceptions import InvalidHash as InvalidHashError

from ..errors import Invalid
from ..secrets import Secret

# OWASP's argon2id baseline (19 MiB, 2 passes): ~40 ms here, well under a second on a Pi.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
MIN_LENGTH, MAX_LENGTH = 12, 256
_COMMON = {"password", "passphrase", "commonsbox", "qwerty", "letmein", "welcome", "iloveyou",
           "admin", "123456", "dragon", "monkey", "football", "sunshine", "princess"}
# A hash to verify against when the user does not exist, so timing does not tell.
_DUMMY = _HASHER.hash("not a real passphrase, only for timing")


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
    if len(set(passphrase)) < 6 or (name and name.lower() in passphrase.lower()) or any(
            letters.startswith(w) and len(letters) - len(w) < 6 for w in _COMMON):
        raise Invalid("the passphrase is too easy to guess: try a few unrelated words", fld)
    return passphrase


def hash_passphrase(passphrase: str) -> Secret:
    return Secret(_HASHER.hash(passphrase))


def verify(stored: Secret | None, passphrase: str) -> bool:
    try:
        return _HASHER.verify(stored.reveal() if stored else _DUMMY, passphrase) and bool(stored)
    except (VerificationError, InvalidHashError):
        return False


def same_code(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
