"""The file share's API methods."""

from ..accounts.service import Caller
from ..api.methods import (
    BOOL,
    OPT_TEXT,
    REQUIRED,
    WHY,
    acting_for,
    change,
    method,
    reason,
)
from ..box import Box
from .schema import FilesSettings


@method("files.settings.set", enabled=(BOOL, REQUIRED), departed=(OPT_TEXT, None), **WHY)
def files_settings_set(box: Box, caller: Caller, enabled, departed, why):
    """DEPARTED: "archive" or "delete" a departed member's folder (None: as it was)."""
    said = f"turn the file share {'on' if enabled else 'off'}"
    if departed is not None:
        said += f"; a departed member's folder: {departed}"
    departed = box.head()[1].files.departed if departed is None else departed
    settings = FilesSettings.from_json({"enabled": enabled, "departed": departed})
    return change(
        box,
        caller.who,
        reason(why, said),
        lambda d: d.replace(files=settings),
    )


@method("files.connection", access="member", owner=(OPT_TEXT, None))
def files_connection(box: Box, caller: Caller, owner):
    """How a member's apps reach the share: address, user, the share's host key."""
    return box.files.connection(box.head()[1], acting_for(box, caller, owner))


@method("files.password", access="member", owner=(OPT_TEXT, None))
def files_password(box: Box, caller: Caller, owner):
    """A new files password (the old one stops working), shown this once."""
    who = acting_for(box, caller, owner)
    with box.lock:
        desired = box.head()[1]
        return {
            **box.files.connection(desired, who),
            "password": box.files.new_password(desired, who),
            "has_password": True,
        }
