"""Chat's API methods: its settings."""

from ..accounts.service import Caller
from ..api.methods import BOOL, INT, WHY, change, method, reason
from ..box import Box
from ..errors import Invalid
from ..vpn.service import UNSET


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
    changes = {k: v for k, v in changes.items() if v is not UNSET}
    if not changes:
        raise Invalid("nothing to change")
    answer = change(
        box,
        caller.who,
        reason(why, "change chat settings: " + ", ".join(sorted(changes))),
        lambda d: box.mail.change_chat(d, **changes),
    )
    return {**answer, "settings": chat_settings_get(box, caller)}
