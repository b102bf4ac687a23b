"""Factory reset: the box forgets its household and starts again, unclaimed.

What goes: every account, session, invitation, one-time link and failed-login count,
every secret (the VPN's and the relay's keys, passphrase hashes, TOTP secrets), every VPN
device and app password, every installer's SSH key, every revision of the configuration,
and the config files the capabilities (mail, chat, files, the installer's SSH) were
given; every capability is told to `forget()` what it keeps outside the stores. The box gets a new WireGuard key, new VPN subnets and a new setup code.

What stays: the disks' contents. The encrypted storage is locked and forgotten, not
erased: it stays readable with its passphrase or recovery key (with the configuration
and keys it held: appliance/configstore.py), and the next household sees a disk holding
data, which is never formatted unless its name is typed back. Data
a household kept unencrypted on the card (`storage unencrypted on`) is set aside,
root's only, beside where it was (private.before-reset-N): no new member of the same
name finds it in their mailbox. Device ids and VPN addresses already handed out stay
used (appliance/store.py): never handed out twice, not across a reset either.

Crash safety: nothing is forgotten until one SQLite commit makes the box unclaimed with
an empty configuration (no users: no session opens anything any more). What follows
only forgets more; if the power is cut half way, `resume()` at the agent's next start
sees the reset revision with older ones still behind it and does the rest again.
"""

import logging
import os

from .box import Box
from .console import announce
from .errors import ApplianceError
from .schema import Desired
from .sqlite import compact, open_private
from .storage.place import MAPPED, PRIVATE, mounted_at
from .update.state import forget as forget_snapshots

log = logging.getLogger(__name__)

# No API caller can be this "who" (user names have no spaces; see Caller.who).
RESET_WHO = "factory reset"
RESET_WHY = "factory reset: the box forgets its household"


def factory_reset(box: Box) -> None:
    """Stop the data services, lock the storage, forget the household (see above)."""
    with box.lock:
        _, old = box.head()
        log.warning("factory reset: the box forgets its household")
        # Rendered from the secrets, which go below (or are locked away with the storage
        # below): these paths are known only now. Removing them first is safe: a
        # reconcile of the old state would write them again.
        rendered = _rendered(box, old)
        box.stop_data_services()
        if box.system.path(MAPPED).exists():
            box.lock_storage()
        for path in rendered:
            box.system.path(path).unlink(missing_ok=True)
        revision = box.store.commit(Desired.new(), RESET_WHO, RESET_WHY)  # unclaimed
        _forget(box, revision.n)
        box.reconcile()
        announce(box.paths, box.runtime.setup_code()[0])
    log.warning("factory reset done: revision %d, unclaimed", revision.n)


def resume(box: Box) -> bool:
    """At the agent's start, before it serves: finish a reset the power cut short.
    True if there was one."""
    revision, _ = box.head()
    if (revision.who, revision.why) != (RESET_WHO, RESET_WHY) or len(box.store.history(2)) < 2:
        return False
    log.warning("finishing the factory reset of revision %d", revision.n)
    with box.lock:
        _forget(box, revision.n)
    return True


def _forget(box: Box, reset_revision: int) -> None:
    """Everything after the commit that made the box unclaimed; each step may run again.
    The history goes last: while it is there, resume() knows the reset is unfinished."""
    _wipe(box.paths.runtime_db)  # sessions, links, invitations, failures, setup code
    _wipe(box.paths.secrets_db)  # every secret
    forget_snapshots(box.paths)  # the copies an update kept of them
    box.vpn.ensure_box_key()  # a new WireGuard identity
    box.runtime.setup_code(renew=True)
    _set_aside_unencrypted(box, reset_revision)
    for cap in box.capabilities:  # what a capability keeps outside the stores (accounts)
        cap.forget()
    box.store.card.forget_before(reset_revision)


def _rendered(box: Box, desired: Desired) -> set[str]:
    """The files the capabilities (mail, chat, files, the installer's SSH) were given
    for DESIRED."""
    paths: set[str] = set()
    for cap in box.capabilities:
        try:
            paths |= cap.rendered(desired)
        except ApplianceError as error:  # its keys are missing: it wrote nothing either
            log.warning("factory reset: %s's files not known (%s)", cap.name, error)
    return paths


def _set_aside_unencrypted(box: Box, reset_revision: int) -> None:
    """Data kept on the card itself (no encrypted volume mounted there): renamed, kept."""
    private = box.system.path(PRIVATE)
    if mounted_at(box.system) is not None or not private.is_dir() or not any(private.iterdir()):
        return
    aside = private.with_name(f"{private.name}.before-reset-{reset_revision}")
    os.chmod(private, 0o700)
    private.rename(aside)
    log.warning(
        "factory reset: the data kept unencrypted on the card is set aside in %s",
        PRIVATE + aside.name.removeprefix(private.name),
    )


def _wipe(path, only: str | None = None, args: tuple = ()) -> None:
    """Delete the rows (every row of every table, or ONLY's) so that they are gone from
    the file too: secure_delete (appliance/sqlite.py) overwrites what is deleted, and the
    write-ahead log, which held the old pages, is emptied. The agent's own connections
    stay open: SQLite serialises writers."""
    db = open_private(path)
    try:
        statements = (
            [(only, args)]
            if only
            else [
                (f'DELETE FROM "{name}"', ())
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                ).fetchall()
            ]
        )
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, values in statements:
                db.execute(sql, values)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        compact(db)
    finally:
        db.close()
