"""Where the agent keeps things, all under one root directory.

On the box the root is ``/``; the demo and the tests give each box its own root.
Everything the box changes lives under ``state_dir``, the data partition on the box.
"""

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SOCKET = Path("/run/commonsbox/agent.sock")


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/commonsbox"

    @property
    def state_db(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def secrets_db(self) -> Path:
        return self.state_dir / "secrets" / "secrets.db"

    @property
    def runtime_db(self) -> Path:
        return self.state_dir / "secrets" / "runtime.db"

    @property
    def volume_state_db(self) -> Path:
        """On the encrypted storage, once the box has it (appliance/configstore.py)."""
        return self.state_dir / "private/agent/state.db"

    @property
    def volume_secrets_db(self) -> Path:
        return self.state_dir / "private/agent/secrets.db"

    @property
    def run_dir(self) -> Path:
        return self.root / "run/commonsbox"

    @property
    def socket(self) -> Path:
        return self.run_dir / "agent.sock"

    @property
    def tls_cert(self) -> Path:
        return self.state_dir / "tls/webui.crt"

    @property
    def tls_key(self) -> Path:
        return self.state_dir / "tls/webui.key"

    @property
    def webui_state(self) -> Path:
        """The web UI's own (its user's) directory: its cookie-signing key."""
        return self.state_dir / "web"

    @property
    def log_dir(self) -> Path:
        return self.root / "var/log/commonsbox"
