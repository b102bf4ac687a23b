"""What the system has now, as frozen data read by a backend."""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..secrets import Secret


@dataclass(frozen=True)
class Peer:
    public_key: str
    preshared_key: Secret | None = None
    allowed_ips: frozenset[str] = frozenset()
    endpoint: str | None = None
    last_handshake: float = 0.0  # seconds since the epoch; 0 = never
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass(frozen=True)
class Interface:
    name: str
    private_key: Secret | None
    listen_port: int
    addresses: frozenset[str] = frozenset()  # "10.0.0.1/24" form
    up: bool = False
    peers: Mapping[str, Peer] = field(default_factory=dict)


@dataclass(frozen=True)
class VpnFacts:
    """Every WireGuard interface this agent manages in its network namespace."""

    interfaces: Mapping[str, Interface]
    # When the system was read (time.monotonic): facts known from the system's
    # acknowledgement of a change keep the time of the read they were built on.
    read_at: float = field(default_factory=time.monotonic, compare=False)
