"""Recovery keys: shown once at setup, printed or written down, typed back years later.

40 characters of Crockford's base32 (no I, L, O or U: 200 bits), in groups of five;
read back forgivingly (o is 0, i and l are 1).
"""

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # 5 bits a character
GROUPS, GROUP = 8, 5


def new_recovery_key() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP))
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def normal(typed: str) -> str | None:
    """A recovery key as typed (any case, spaces or dashes, O for 0...) in its one
    spelling, or None if it cannot be one."""
    raw = "".join(c for c in typed.upper() if c not in " -\t")
    raw = raw.replace("O", "0").replace("I", "1").replace("L", "1")
    if len(raw) != GROUPS * GROUP or any(c not in ALPHABET for c in raw):
        return None
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))
