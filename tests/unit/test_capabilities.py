"""The capability contract (appliance/capability.py) and the one list that the rest of the
box reads its declarations from (appliance/capabilities.py)."""

from dataclasses import dataclass, replace

import pytest

from appliance import capabilities
from appliance.box import Box
from appliance.capability import Capability, Check, Ports, UnknownAction
from appliance.errors import Invalid
from appliance.firewall import ruleset
from appliance.paths import Paths
from appliance.schema import Desired
from appliance.slice import Slice
from appliance.system import System
from appliance.validate import text


@pytest.fixture
def box(tmp_path):
    box = Box(Paths(tmp_path), backend=None, system=System(root=tmp_path))
    yield box
    box.close()


def test_every_capability_keeps_the_contract_and_refuses_an_action_it_does_not_know(box):
    assert [type(cap) for cap in box.capabilities] == list(capabilities.CAPABILITIES)

    @dataclass(frozen=True)
    class Teleport:
        where: str

    for cap in box.capabilities:
        assert isinstance(cap, Capability)
        with pytest.raises(UnknownAction, match=f"^{cap.name}: no such action .*Teleport"):
            cap.apply([Teleport("the moon")])


def test_what_runs_on_the_encrypted_storage_is_declared(box):
    assert [cap.name for cap in box.data_services] == ["mail", "chat", "files"]
    assert capabilities.card_secrets() == ("account/", "vpn/", "ssh/")


def test_the_firewall_opens_what_the_turned_on_capabilities_declare():
    d = Desired.new()
    assert ruleset.open_ports(d) == {("tcp", 443), ("udp", 51820), ("udp", 68), ("udp", 546)}
    d = d.replace(mail=replace(d.mail, enabled=True, domain="smith.example"))
    d = d.replace(chat=replace(d.chat, enabled=True))
    assert ruleset.open_ports(d) - ruleset.open_ports(Desired.new()) == {
        ("tcp", port) for port in (25, 465, 587, 143, 993, 5222, 5269, 5281)
    }
    assert ruleset.home_ports(d) == frozenset()


@dataclass(frozen=True)
class RadioSettings(Slice):
    station: str = "off"

    @classmethod
    def from_json(cls, value, fld):
        return cls(station=text(value["station"], f"{fld}.station", 32))

    def to_json(self):
        return {"station": self.station}


class Radio(Capability):
    """A capability as a new folder would bring it: its settings, a port, a secret on the
    card."""

    name = "radio"
    settings = ("radio", RadioSettings)
    card_secrets = ("radio/",)
    applied: list = []

    @classmethod
    def made(cls, parts):
        return cls()

    @staticmethod
    def ports(desired):
        return Ports(open=frozenset({("udp", 7070)}), home=frozenset({("tcp", 7071)}))

    def depends_on(self, desired):
        return desired.radio

    def read_facts(self, desired):
        return {"tuned": bool(self.applied)}

    def plan(self, facts, desired):
        return [] if facts["tuned"] or desired.radio.station == "off" else ["tune"]

    def apply(self, actions):
        for action in actions:
            if action != "tune":
                raise self.unknown(action)
            self.applied.append(action)

    def health(self, facts, desired):
        return [Check(self.name, "tuned", facts["tuned"])]


def test_a_new_capability_is_its_folder_plus_one_line_in_the_list(monkeypatch, tmp_path):
    monkeypatch.setattr(capabilities, "CAPABILITIES", (*capabilities.CAPABILITIES, Radio))
    d = Desired.new()
    assert ("udp", 7070) in ruleset.open_ports(d) and ("tcp", 7071) in ruleset.home_ports(d)
    assert "7070" in ruleset.wanted(d).structure and "7071" in ruleset.wanted(d).structure
    assert "radio/" in capabilities.card_secrets()

    # Its settings are part of the document: stored, loaded again, changed like any other.
    d = d.replace(radio=RadioSettings("jazz"))
    assert Desired.from_json(d.to_json()).radio == RadioSettings("jazz")
    assert Desired.new().radio == RadioSettings() and "radio" in Desired.new().to_json()
    with pytest.raises(Invalid, match="radio.station"):
        Desired.from_json({**d.to_json(), "radio": {"station": 7}})

    box = Box(Paths(tmp_path), backend=None, system=System(root=tmp_path))
    try:
        box.capabilities = [c for c in box.capabilities if c.name not in ("vpn", "firewall")]
        _, _, outcomes = box.change(
            "test", "tune in", lambda old: (old.replace(radio=RadioSettings("jazz")), None)
        )
        outcome = next(o for o in outcomes if o.capability == "radio")
        assert outcome.actions == ["tune"] and outcome.converged  # verified by a fresh read
        radio = box.capability(Radio)
        assert radio.health(radio.read_facts(box.head()[1]), box.head()[1])[0].ok
    finally:
        box.close()


def test_the_image_carries_the_packages_the_capabilities_declare():
    from cbimage import recipe

    for architecture in ("amd64", "arm64"):
        image = set(recipe.packages(architecture))
        for cap in capabilities.CAPABILITIES:
            assert cap.packages and set(cap.packages) <= image, cap.name
    assert {"postfix", "prosody", "openssh-server", "nftables"} <= set(capabilities.packages())
    # What those packages would start at boot, the agent starts itself (when asked to).
    assert set(recipe.RELAY_UNITS) == {
        "postfix.service",
        "dovecot.service",
        "opendkim.service",
        "prosody.service",
        "ssh.service",
        "chrony.service",
    }
