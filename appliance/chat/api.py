"""Chat's API methods: its settings."""

from ..accounts.service import Caller
from ..api.methods import BOOL, INT, WHY, change, method, named, reason
from ..box import Box
from ..validate import UNSET


@method("chat.settings.get", access="member")
def chat_settings_get(box: Box, caller: Caller):
    return box.data_settings().chat.to_json()


@method(
    "chat.settings.set",
    enabled=(BOOL, UNSET),
    archive_days=(INT, UNSET),
    upload_mib=(INT, UNSET),
    upload_days=(INT, UNSET),
    **WHY,
)
def chat_settings_set(box: Box, caller: Caller, why, **changes):
    changes = named(changes)
    answer = change(
        box,
        caller.who,
        reason(why, "change chat settings: " + ", ".join(sorted(changes))),
        lambda d: box.mail.change_chat(d, **changes),
    )
    return {**answer, "settings": chat_settings_get(box, caller)}
