"""The backups' API methods: where they go, a backup now, what is kept, a check, and
the backup key (for the recovery kit). A whole restore runs before the agent starts
(`commonsbox backup restore`), so it is not here."""

import logging
import threading
import time

from ..accounts.service import Caller
from ..api.methods import OPT_TEXT, REQUIRED, WHY, change, method, reason
from ..box import Box
from ..errors import ApplianceError, Conflict, Forbidden
from . import record, schema, service
from .borg import Borg
from .schema import BackupSettings

log = logging.getLogger(__name__)


@method("backup.setup", repository=(OPT_TEXT, REQUIRED), **WHY)
def backup_setup(box: Box, caller: Caller, repository: str | None, why):
    """Backups into the folder REPOSITORY (made, or the household's own opened again
    with the box's key); null: no more backups (the repository stays as it is)."""
    box.data_settings()  # refused while the storage is locked: the key is kept there
    where = schema.repository(repository)
    if where is not None:
        with box.lock:
            service.set_up(box.secrets, box.paths, where)
    return change(
        box,
        caller.who,
        reason(why, f"backups to {where}" if where else "no more backups"),
        lambda d: d.replace(backup=BackupSettings(repository=where)),
    )


@method("backup.now")
def backup_now(box: Box, caller: Caller):
    return service.back_up(box)


@method("backup.auto", access="root")
def backup_auto(box: Box, caller: Caller):
    """The nightly backup (commonsbox-backup.timer): started in the agent, if one is
    due; its outcome is in the record (backup.status) and the health check."""
    why = service.due(box, time.time())
    if why is not None:
        return {"skipped": why}
    threading.Thread(target=_quietly, args=(box,), name="backup", daemon=True).start()
    return {"started": True}


def _quietly(box: Box) -> None:
    try:
        service.back_up(box)
    except ApplianceError as err:  # recorded by back_up; the health check shows it
        log.warning("the nightly backup failed: %s", err.message)


@method("backup.status")
def backup_status(box: Box, caller: Caller):
    """Where backups go, the last good one, the last failure and check."""
    found = record.read(box.paths)
    where = box.data_settings().backup.repository
    return {
        "repository": where,
        "last_good": found.get("last_good"),
        "last_failure": found.get("last_failure"),
        "last_check": found.get("last_check"),
        "overdue": record.overdue(found, time.time()) if where else None,
    }


def _borg(box: Box) -> Borg:
    where = box.data_settings().backup.repository
    if where is None:
        raise Conflict("backups are not set up", "repository")
    return Borg(where, service.key_of(box.secrets), service.borg_base(box.paths))


@method("backup.list")
def backup_list(box: Box, caller: Caller):
    """The backups in the repository, oldest first."""
    return [{"name": a["name"], "time": a["time"]} for a in _borg(box).archives()]


@method("backup.check")
def backup_check(box: Box, caller: Caller):
    """borg check: the repository and every archive's metadata are whole."""
    try:
        _borg(box).check()
    except Exception as err:
        record.note(box.paths, last_check={"ok": False, "error": str(getattr(err, "message", err))})
        raise
    record.note(box.paths, last_check={"ok": True})
    return {"ok": True}


@method("backup.key")
def backup_key(box: Box, caller: Caller):
    """The backup key, for the household's recovery kit: with the repository, all a new
    box needs to come back, so it is the household's alone: shown to an admin (not to
    an installer, who leaves at the handover), never logged."""
    if caller.role not in ("admin", "root"):
        raise Forbidden("the backup key is the household's: an admin of the household sees it")
    return {"key": service.key_of(box.secrets).reveal()}
