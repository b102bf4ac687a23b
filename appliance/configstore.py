"""Where the configuration lives: on the card until the box has encrypted storage; from
then on, the card keeps only what opening that storage needs, and the rest is on it.

A box far from its household must, after a power cut, bring its VPN up and let a
manager log in to type the passphrase: so the card keeps the newest revision's box,
VPN, accounts, storage and SSH settings (no older revision), the WireGuard keys, the
accounts' passphrase hashes and TOTP secrets, and the installer's SSH host key.
Everything else is on the volume, in PRIVATE/agent, and read only while it is unlocked:
every revision (who changed what, when and why), the mail, chat and file-share settings,
and their secrets (DKIM and TLS keys, the smarthost's password, app passwords' hashes,
the share's host key).

While the storage is locked the box runs on the card's part: mail, chat and files are
off (they could not run anyway) and nothing can be changed until it is unlocked; a
factory reset still can (it forgets the volume: appliance/reset.py).

Every change is written to the volume first, then its card copy: a power cut between
the two leaves the card one revision behind, and the next unlock copies it again.
"""

import logging
from collections.abc import Callable

from .capabilities import card_secrets, card_settings
from .errors import Conflict
from .paths import Paths
from .schema import Desired
from .secrets import Secret, SecretStore
from .store import Revision, StateStore
from .update.state import at_unlock

log = logging.getLogger(__name__)

LOCKED = "the encrypted storage is locked: unlock it first"
CARD_WHY = "the newest revision's copy (the history is on the encrypted storage)"


def card_copy(store: StateStore, revision: Revision, desired: Desired) -> None:
    """Onto the card, as its one revision: what the box needs while its storage is
    locked: the slices of the capabilities that keep nothing on it (the VPN, the storage
    itself, the installer's SSH); mail, chat and files off; not even why it changed."""
    store.keep_only(
        Revision(revision.n, revision.at, revision.who, CARD_WHY),
        Desired(
            desired.box,
            desired.accounts,
            **{key: getattr(desired, key) for key in card_settings()},
        ),
    )


class ConfigStore:
    """The desired state's store, placed. The agent's lock is held around changes.
    MOUNTED: whether the encrypted volume is unlocked and mounted now."""

    def __init__(self, paths: Paths, mounted: Callable[[], bool]):
        self.paths = paths
        self._mounted = mounted
        self.card = StateStore(paths.state_db)
        self.card_secrets = SecretStore(paths.secrets_db)
        self.volume: StateStore | None = None
        self.volume_secrets: SecretStore | None = None
        self.secrets = PlacedSecrets(self)
        self.follow_storage()

    @property
    def on_volume(self) -> bool:
        """The box has encrypted storage, so the configuration lives on it."""
        head = self.card.head()
        return head is not None and head[1].storage.volume is not None

    @property
    def locked(self) -> bool:
        """Only the card's part can be read now."""
        return self.volume is None and self.on_volume

    def _rest(self) -> tuple[StateStore, SecretStore]:
        """Where the history and the secrets not on the card are now."""
        if self.locked:
            raise Conflict(LOCKED, "storage")
        if self.volume is not None:
            return self.volume, self.volume_secrets
        return self.card, self.card_secrets

    # -- following the volume ------------------------------------------------------

    def follow_storage(self) -> None:
        """Open the volume's store once it is mounted; let go of it once it is not."""
        if self.volume is not None and not self._mounted():
            self.close_volume()
        elif self.volume is None and self.on_volume and self._mounted():
            self._open_volume()

    def _open_volume(self) -> None:
        where = self.paths.volume_state_db
        if not where.exists():
            raise Conflict(f"the encrypted storage holds no configuration ({where} is missing)")
        at_unlock(self.paths)  # its stores across versions: a snapshot, or one put back
        self.volume = StateStore(where)
        self.volume_secrets = SecretStore(self.paths.volume_secrets_db)
        card, volume = self.card.head(), self.volume.head()
        if volume is not None and volume[0].n > card[0].n:  # the power went between the two
            card_copy(self.card, *volume)

    def close_volume(self) -> None:
        """Before the volume is unmounted (its files must be closed) or after it went."""
        for store in (self.volume, self.volume_secrets):
            if store is not None:
                store.close()
        self.volume = self.volume_secrets = None

    def _move_onto_volume(self) -> None:
        """The volume was just made and mounted: every revision and the secrets the card
        need not keep go onto it, and off the card."""
        self.paths.volume_state_db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.card.copy_to(self.paths.volume_state_db)
        self.volume = StateStore(self.paths.volume_state_db)
        self.volume_secrets = SecretStore(self.paths.volume_secrets_db)
        for name, secret in self.card_secrets.get_many("").items():
            if not name.startswith(card_secrets()):
                self.volume_secrets.put(name, secret)
                self.card_secrets.delete(name)
        self.card_secrets.compact()
        log.info("the configuration moved onto the encrypted storage")

    # -- the StateStore interface --------------------------------------------------

    def head(self) -> tuple[Revision, Desired] | None:
        return (self.volume or self.card).head()

    def history(self, limit: int = 50, before: int | None = None) -> list[Revision]:
        return self._rest()[0].history(limit, before)

    def document(self, n: int) -> dict:
        return self._rest()[0].document(n)

    def revision(self, n: int) -> Revision:
        return self._rest()[0].revision(n)

    def was_handed_out(self, address: str) -> bool:
        return self._rest()[0].was_handed_out(address)

    @property
    def last_device_id(self) -> int:
        return self._rest()[0].last_device_id

    @property
    def releases(self) -> int:
        return self._rest()[0].releases if not self.locked else 0

    @property
    def keep(self) -> int:
        return self._rest()[0].keep

    def set_keep(self, keep) -> int:
        return self._rest()[0].set_keep(keep)

    def pin(self, n: int, pinned: bool = True) -> Revision:
        return self._rest()[0].pin(n, pinned)

    def sweep(self) -> set[int]:
        return self._rest()[0].sweep()

    def commit(self, desired: Desired, who: str, why: str) -> Revision:
        if desired.storage.volume is None:  # no encrypted storage (or a factory reset)
            if self.volume is not None:
                raise Conflict("the encrypted storage cannot be forgotten while it is open")
            return self.card.commit(desired, who, why)
        if self.volume is None:
            if self.on_volume or not self._mounted():
                raise Conflict(LOCKED, "storage")
            self._move_onto_volume()
        revision = self.volume.commit(desired, who, why)
        card_copy(self.card, revision, desired)
        return revision

    def close(self) -> None:
        self.close_volume()
        self.card.close()
        self.card_secrets.close()


class PlacedSecrets:
    """The SecretStore interface, each secret where its name says: the card keeps what the
    capabilities declare (the VPN's keys, logging in, the installer's SSH host key)."""

    def __init__(self, store: ConfigStore):
        self._store = store

    def _for(self, name: str) -> SecretStore:
        if name.startswith(card_secrets()):
            return self._store.card_secrets
        return self._store._rest()[1]

    def get(self, name: str) -> Secret | None:
        return self._for(name).get(name)

    def get_many(self, prefix: str) -> dict[str, Secret]:
        return self._for(prefix).get_many(prefix)

    def put(self, name: str, secret: Secret) -> None:
        self._for(name).put(name, secret)

    def swap(self, name: str, old: Secret, new: Secret) -> bool:
        return self._for(name).swap(name, old, new)

    def delete(self, name: str) -> None:
        self._for(name).delete(name)

    def close(self) -> None:
        self._store.close()
