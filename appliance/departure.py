"""What a person who leaves loses, and what a restore may bring back.

The desired state says what a person holds (each capability's slice drops it:
``Desired.without_member``); this module adds what lives apart from the document: the
secrets behind what they held, which go with them, and the rule a restore follows: an
older revision comes back without anything held by someone who is not a member now, and
without anything whose secret is gone (it could only come back half-alive: a device
whose preshared key is lost would stop the VPN's reconcile; an app password without its
hash would be listed but never work). Each slice says which secrets it holds
(appliance/slice.py): nothing here knows a capability.
"""

from .schema import Desired
from .secrets import SecretStore

ACCOUNT_SECRETS = "account/{name}/"  # a person's passphrase hash, second factor...


def held_secrets(desired: Desired) -> frozenset[str]:
    return frozenset().union(*(part.secrets() for part in desired.slices().values()))


def forget_departed(
    secrets: SecretStore, names: list[str], before: Desired, after: Desired
) -> None:
    """The secrets of NAMES, who left between BEFORE and AFTER, and of what they held."""
    doomed = set(held_secrets(before) - held_secrets(after))
    prefixes = [ACCOUNT_SECRETS] + [
        prefix for part in before.slices().values() for prefix in part.personal_secrets
    ]
    for name in names:
        for prefix in prefixes:
            doomed |= secrets.get_many(prefix.format(name=name)).keys()
    for secret in sorted(doomed):
        secrets.delete(secret)


def restorable(old: Desired, current: Desired, secrets: SecretStore, at: float) -> Desired:
    """OLD (the revision of time AT being restored, with today's accounts) as it may
    come back: nothing held by someone who is not a member now (nor by one who left
    and whose name a new member has since), nothing whose secret is gone. The box's
    own devices (no owner) come back as they were."""
    members = {u.name for u in current.accounts.users if u.created is None or u.created <= at}
    for name in sorted(old.owners() - members):
        old = old.without_member(name)
    present = frozenset(name for name in held_secrets(old) if secrets.get(name) is not None)
    now = current.slices()
    return old.replace(
        **{key: part.restored(now[key], present) for key, part in old.slices().items()}
    )
