"""The installer's SSH: its API methods."""

from ..accounts.service import Caller
from ..api.methods import (
    OPT_TEXT,
    REQUIRED,
    TEXT,
    WHY,
    change,
    method,
    reason,
)
from ..box import Box
from ..errors import NotFound
from .openssh import fingerprint as key_fingerprint
from .schema import SshKey, SshSettings, key_comment


@method("ssh.access")
def ssh_access(box: Box, caller: Caller):
    """The keys that may log in as root, and the box's SSH host key to check."""
    return box.ssh.access(box.head()[1])


@method("ssh.key.add", key=(TEXT, REQUIRED), name=(OPT_TEXT, None), **WHY)
def ssh_key_add(box: Box, caller: Caller, key, name, why):
    """A public key that may log in as root over SSH; the first one turns SSH on. NAME
    defaults to the key's comment (alice@laptop)."""
    added = SshKey.from_json(
        {
            "key": key,
            "name": key_comment(key) if name is None else name,
            "owner": None if caller.role == "root" else caller.name,
        },
        "",
    )
    answer = change(
        box,
        caller.who,
        reason(why, f"add SSH key {added.name!r}"),
        lambda d: d.replace(ssh=d.ssh.with_key(added)),
    )
    return {**answer, "ssh": box.ssh.access(box.head()[1])}


@method("ssh.key.remove", fingerprint=(TEXT, REQUIRED), **WHY)
def ssh_key_remove(box: Box, caller: Caller, fingerprint, why):
    """The last key gone turns SSH off."""
    keys = box.head()[1].ssh.keys
    gone = next((k for k in keys if key_fingerprint(k.key) == fingerprint), None)
    if gone is None:
        raise NotFound("there is no SSH key with that fingerprint", "fingerprint")
    answer = change(
        box,
        caller.who,
        reason(why, f"remove SSH key {gone.name!r}"),
        lambda d: d.replace(ssh=SshSettings(tuple(k for k in d.ssh.keys if k != gone))),
    )
    return {**answer, "ssh": box.ssh.access(box.head()[1])}
