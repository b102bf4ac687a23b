import pytest

from appliance.schema import Desired
from appliance.secrets import SecretStore
from appliance.store import StateStore
from appliance.vpn.schema import Endpoint
from appliance.vpn.service import VpnService


@pytest.fixture
def stores(tmp_path):
    store = StateStore(tmp_path / "state.db")
    secrets = SecretStore(tmp_path / "secrets" / "secrets.db")
    yield store, secrets
    store.close()
    secrets.close()


@pytest.fixture
def vpn(stores):
    """The VPN service over real stores, on a fresh box with a /29 (5 device addresses)."""
    store, secrets = stores
    service = VpnService(store, secrets)
    service.ensure_box_key()
    desired = Desired.new()
    desired = service.change_settings(
        desired, ipv4_subnet="10.9.0.0/29", endpoint={"host": "box.example.org", "port": 51820}
    )
    store.commit(desired, "test", "setup")
    return service


def commit(service, result, why="test"):
    desired = result[0] if isinstance(result, tuple) else result
    service.store.commit(desired, "test", why)
    return result


def head(service):
    return service.store.head()[1]


__all__ = ["commit", "head", "Endpoint"]
