"""Where the household's data lives, and whether it may be used now.

Mail, chat and shared files live under PRIVATE. With an encrypted volume that is its
mount point, and the services that keep data there start only while it is unlocked and
mounted; without one they start only if the household chose unencrypted storage.
"""

from ..system import System
from .schema import StorageSettings

PRIVATE = "/var/lib/commonsbox/private"
# The keys and password files the data services' daemons read (DKIM, TLS, app passwords'
# hashes, the smarthost's password, the share's host key): with the data, never on the card.
KEYS = f"{PRIVATE}/keys"
MAPPER = "cbprivate"  # /dev/mapper/cbprivate while unlocked
MAPPED = f"/dev/mapper/{MAPPER}"


def mounted_at(system: System, where: str = PRIVATE) -> str | None:
    """The device mounted at WHERE as the box sees it (its PID 1's mount table)."""
    for line in (system.read("/proc/1/mountinfo") or b"").decode().splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == where:
            source = fields[fields.index("-") + 2]
            return source
    return None


def blocked(storage: StorageSettings, source: str | None) -> str | None:
    """Why services that keep the household's data may not run now (None: they may).
    SOURCE: what is mounted at PRIVATE."""
    if storage.volume is not None:
        if source != MAPPED:
            return "the encrypted storage is locked: unlock it with the household's passphrase"
        return None
    if not storage.allow_unencrypted:
        return "no encrypted storage yet: set up a disk, or choose to keep data unencrypted"
    return None
