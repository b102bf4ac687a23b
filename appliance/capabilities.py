"""The box's capabilities, in the order a reconcile converges them. Adding a capability
is its folder (appliance/capability.py says what it implements and declares) plus one
line here; the agent, the firewall, the card/volume split and the factory reset read
their declarations from this list."""

from .backup.capability import BackupCapability
from .capability import Capability, Ports
from .chat.capability import ChatCapability
from .clock.capability import ClockCapability
from .files.capability import FilesCapability
from .firewall.capability import FirewallCapability
from .mail.capability import MailCapability
from .schema import Desired
from .ssh.capability import SshCapability
from .storage.capability import StorageCapability
from .update.capability import UpdateCapability
from .vpn.capability import VpnCapability

CAPABILITIES: tuple[type[Capability], ...] = (
    ClockCapability,  # first: what follows may check certificates against the clock
    VpnCapability,
    FirewallCapability,
    StorageCapability,  # before what keeps its data there
    MailCapability,
    ChatCapability,
    FilesCapability,
    SshCapability,
    UpdateCapability,
    BackupCapability,
)

# Logging in (appliance/accounts) is not converged, but its secrets stay on the card too.
ACCOUNT_SECRETS = ("account/",)


def packages() -> tuple[str, ...]:
    """The Debian packages the capabilities need in the box's image (image/cbimage)."""
    return tuple(sorted({p for cap in CAPABILITIES for p in cap.packages}))


def units_off() -> tuple[str, ...]:
    """The units the capabilities' packages enable that the agent starts itself, when
    the household turns them on (the image disables them)."""
    return tuple(sorted({u for cap in CAPABILITIES for u in cap.units_off}))


def card_secrets() -> tuple[str, ...]:
    """The prefixes of the secrets the card keeps while the encrypted storage is locked."""
    return ACCOUNT_SECRETS + tuple(p for cap in CAPABILITIES for p in cap.card_secrets)


def card_settings() -> tuple[str, ...]:
    """The slices the card keeps a copy of: those of the capabilities that keep nothing on
    the encrypted storage, and so run while it is locked."""
    return tuple(cap.settings[0] for cap in CAPABILITIES if cap.settings and not cap.uses_storage)


def ports(desired: Desired) -> Ports:
    """What the capabilities turned on in DESIRED ask the firewall to open."""
    declared = [cap.ports(desired) for cap in CAPABILITIES]
    return Ports(
        open=frozenset().union(*(p.open for p in declared)),
        home=frozenset().union(*(p.home for p in declared)),
    )
