"""Backups as the agent makes them, and a whole box restored from one.

    set_up(box, repository)     a new repository (or the household's own again), the key
    back_up(box)                a snapshot, archived, pruned (7 daily, 4 weekly, 12 monthly)
    restore(paths, ...)         a box's stores and data from an archive, before its agent
                                starts (a new card, an empty disk)

The backup key is the repository's passphrase: random, made once, kept as the secret
KEY_SECRET with the data it protects (encrypted storage), shown only to an admin for the
recovery kit; with the repository it is all a new box needs.
"""

import base64
import logging
import os
import secrets as random
import shutil
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from ..configstore import PlacedSecrets, card_copy
from ..departure import forget_departed, restorable
from ..errors import Conflict, Invalid, NotFound, SystemFailure
from ..paths import Paths
from ..schema import Desired
from ..secrets import Secret, SecretStore
from ..storage.place import PRIVATE, mounted_at
from ..storage.schema import StorageSettings
from ..store import StateStore
from ..system import System
from . import record, snapshot
from .borg import Borg, archive_name

log = logging.getLogger(__name__)

KEY_SECRET = "backup/key"
KEY_GROUPS = 8  # of 4 base32 letters: 160 random bits, typed from paper in a minute
RUNNING = threading.Lock()  # one backup at a time
NIGHTLY = 20 * 3600  # the timer's backup at most this often (it fires nightly, and at boot)


def new_key() -> Secret:
    letters = base64.b32encode(random.token_bytes(20)).decode()
    return Secret("-".join(letters[i : i + 4] for i in range(0, 32, 4)))


def typed_key(text: str) -> Secret:
    """A key as a person types it from the kit: any case, spaces or dashes anywhere."""
    letters = "".join(text.split()).replace("-", "").upper()
    if len(letters) != 4 * KEY_GROUPS or any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in letters
    ):
        raise Invalid("a backup key is 32 letters and digits (2-7), in groups of four", "key")
    return Secret("-".join(letters[i : i + 4] for i in range(0, 32, 4)))


def borg_base(paths: Paths) -> Path:
    return paths.state_dir / "backup" / "borg"


def key_of(secrets: SecretStore | PlacedSecrets) -> Secret:
    key = secrets.get(KEY_SECRET)
    if key is None:
        raise Conflict("backups are not set up on this box", "repository")
    return key


def set_up(secrets: SecretStore | PlacedSecrets, paths: Paths, repository: str) -> Borg:
    """The repository at REPOSITORY ready for this box's backups: made (with the box's
    key, made now if it has none), or, if one is there, opened with that key."""
    key = secrets.get(KEY_SECRET)
    if key is None:
        key = new_key()
        secrets.put(KEY_SECRET, key)
    borg = Borg(repository, key, borg_base(paths))
    where = Path(repository)
    if (where / "config").is_file():
        borg.archives()  # WrongKey if it is someone else's (or another key's)
    elif where.exists() and (not where.is_dir() or any(where.iterdir())):
        raise Conflict(
            f"{repository} holds other files: choose an empty or new folder", "repository"
        )
    elif not where.parent.is_dir():
        raise NotFound(
            f"there is no folder {where.parent} (is the disk plugged in and mounted?)",
            "repository",
        )
    else:
        borg.init()
    record.note(paths, setup={"repository": repository})
    return borg


def snapshot_dir(system: System) -> Path:
    """On the data's own storage (encrypted, if the box has it): it holds every secret."""
    return system.path(PRIVATE) / ".backup-snapshot"


def back_up(box, now: datetime | None = None) -> dict:
    """A backup now (box: appliance.box.Box). Conflict if one is running already."""
    desired = box.data_settings()
    repository = desired.backup.repository
    if repository is None:
        raise Conflict("backups are not set up: choose where they go first", "repository")
    if not RUNNING.acquire(blocking=False):
        raise Conflict("a backup is running already")
    started = time.monotonic()
    where = snapshot_dir(box.system)
    try:
        borg = Borg(repository, key_of(box.secrets), borg_base(box.paths))
        shutil.rmtree(where, ignore_errors=True)  # one a power cut left behind
        where.mkdir(mode=0o700, parents=True)
        with box.lock:  # no change between the stores' copies
            stores = snapshot.take_stores(box.paths, where)
        files = snapshot.take_data(box.system, where)
        name = _archive(borg, box.system, where, _name(now))
        borg.prune()
        done = {
            "archive": name,
            "repository": repository,
            "stores": stores,
            "files": files,
            "seconds": round(time.monotonic() - started, 2),
        }
        record.note(box.paths, last_good=done)
        log.info("backup %s made in %.1f s", name, done["seconds"])
        return done
    except Exception as err:
        record.note(box.paths, last_failure={"error": str(getattr(err, "message", err))[:300]})
        raise
    finally:
        shutil.rmtree(where, ignore_errors=True)
        RUNNING.release()


def _archive(borg: Borg, system: System, where: Path, name: str) -> str:
    """An archive of the snapshot in which no file changed while borg read it: those
    that did are copied untorn and the archive made again (snapshot.py)."""
    for _ in range(snapshot.TRIES):
        _, changed = borg.create(name, where)
        if not changed:
            return name
        log.info("%d file(s) changed while read: copied, and the archive made again", len(changed))
        borg.delete(name)
        snapshot.recopy(system, where, changed)
    raise SystemFailure("files kept changing while they were backed up: try again later")


def due(box, now: float) -> str | None:
    """Why the nightly backup is not made now (None: it is due)."""
    try:
        desired = box.data_settings()
    except Conflict as locked:
        return locked.message
    if desired.backup.repository is None:
        return "backups are not set up"
    if RUNNING.locked():
        return "a backup is running"
    last = (record.read(box.paths).get("last_good") or {}).get("at", 0)
    if now - last < NIGHTLY:
        return "the last good backup is less than a day old"
    return None


def _name(now: datetime | None) -> str:
    return archive_name(now or datetime.now())


def agent_running(paths: Paths) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(paths.socket))
        except OSError:
            return False
    return True


def restore(
    paths: Paths,
    system: System,
    repository: str,
    key: Secret,
    archive: str | None = None,
    replace: bool = False,
) -> dict:
    """Everything a backup kept, from ARCHIVE (default: the newest) of REPOSITORY, into
    the box at PATHS, whose agent must not run (it starts on what is placed). An archive
    older than the newest comes back as an older revision does (departure.restorable):
    without the members who left since and all they held."""
    if agent_running(paths):
        raise Conflict("the agent is running: a whole box is restored before it starts")
    if mounted_at(system) is not None:
        raise Conflict(
            "a disk is mounted as the box's storage: restore first, then set the new disk "
            "up (the data moves onto it)",
            "storage",
        )
    if not replace and _claimed(paths):
        raise Conflict(
            "this box belongs to a household: a restore replaces everything on it "
            "(say so with --replace)",
            "replace",
        )
    borg = Borg(repository, key, borg_base(paths))
    names = [a["name"] for a in borg.archives()]
    if not names:
        raise NotFound(f"the repository at {repository} holds no backup", "archive")
    chosen = archive or names[-1]
    if chosen not in names:
        raise NotFound(f"there is no backup named {chosen!r}", "archive")
    # Beside the data it becomes (the encrypted storage, once the new box has it): the
    # trees move into place without a copy, and no secret is unpacked onto the card.
    staging = system.path(PRIVATE) / ".restoring"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        borg.extract(chosen, staging / "chosen")
        newest = None
        if chosen != names[-1]:
            borg.extract(names[-1], staging / "newest", ["stores"])
            newest = _head(staging / "newest")
        placed = snapshot.place(staging / "chosen", paths, system)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if paths.volume_state_db.exists():
        _onto_the_card(paths)
    departed = _without_departed(paths, newest, chosen) if newest is not None else []
    record.note(paths, restored={"archive": chosen, "repository": repository, "departed": departed})
    return {"archive": chosen, "placed": placed, "departed": departed}


def _onto_the_card(paths: Paths) -> None:
    """A backup of a box with encrypted storage, restored on a box that has none yet:
    the history and every secret go where a box without one keeps them (the card), and
    the storage is the new box's: none yet, the data kept unencrypted until the
    household sets a new disk up (which moves it all onto that disk, as ever)."""
    for stale in _with_log(paths.state_db):
        stale.unlink(missing_ok=True)
    os.replace(paths.volume_state_db, paths.state_db)
    volume, card = SecretStore(paths.volume_secrets_db), SecretStore(paths.secrets_db)
    try:
        for name, secret in volume.get_many("").items():
            card.put(name, secret)
    finally:
        volume.close()
        card.close()
    for gone in _with_log(paths.volume_secrets_db):
        gone.unlink(missing_ok=True)
    store = StateStore(paths.state_db)
    try:
        head = store.head()
        if head is None:
            raise NotFound("the backup holds no configuration", "archive")
        was = head[1].storage.volume
        store.commit(
            head[1].replace(storage=StorageSettings(None, allow_unencrypted=True)),
            "backup restore",
            f"restored without its encrypted disk ({was.disk if was else 'none'}): "
            "the data is kept unencrypted until a new disk is set up",
        )
    finally:
        store.close()


def _with_log(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _claimed(paths: Paths) -> bool:
    if not paths.state_db.exists():
        return False
    store = StateStore(paths.state_db)
    try:
        head = store.head()
    finally:
        store.close()
    return head is not None and head[1].box.claimed


def _history_store(root: Path) -> Path:
    """The state store holding the history in an extracted snapshot: the volume's, on a
    box with encrypted storage; else the card's."""
    volume = root / "stores/volume/state.db"
    return volume if volume.exists() else root / "stores/card/state.db"


def _head(extracted: Path) -> Desired:
    store = StateStore(_history_store(extracted))
    try:
        head = store.head()
    finally:
        store.close()
    if head is None:
        raise NotFound("the newest backup holds no configuration", "archive")
    return head[1]


def _without_departed(paths: Paths, newest: Desired, chosen: str) -> list[str]:
    """The placed stores' head without the members the newest backup no longer has
    (Desired.without_member and the secrets behind it: the one path of a departure, as
    a rollback takes it: departure.restorable), stored as a new revision (and its card
    copy). Returns their names."""
    volume = paths.volume_state_db.exists()
    card = StateStore(paths.state_db)
    card_secrets = SecretStore(paths.secrets_db)
    state = StateStore(paths.volume_state_db) if volume else card
    secrets = SecretStore(paths.volume_secrets_db) if volume else card_secrets
    try:
        head = state.head()
        if head is None:
            raise NotFound("the restored backup holds no configuration", "archive")
        revision, old = head
        departed = sorted(
            {u.name for u in old.accounts.users} - {u.name for u in newest.accounts.users}
        )
        if not departed:
            return []
        kept = old
        for name in departed:
            kept = kept.without_member(name)
        kept = restorable(kept, kept, secrets, revision.at)
        why = f"restored {chosen}; not brought back (they left after it): {', '.join(departed)}"
        stored = state.commit(kept, "backup restore", why)
        if volume:
            card_copy(card, stored, kept)
        for store in {id(s): s for s in (secrets, card_secrets)}.values():
            forget_departed(store, departed, old, kept)
            store.compact()
        return departed
    finally:
        for opened in {id(s): s for s in (card, state, card_secrets, secrets)}.values():
            opened.close()
