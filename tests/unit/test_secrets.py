import json
import logging
import os
import stat

import pytest

from appliance.secrets import Secret, SecretStore


def test_a_secret_never_shows_its_value(caplog):
    s = Secret("hunter2-private-key")
    for shown in (repr(s), str(s), f"{s}", "%s" % s, f"{s!r}", repr([s]), repr({"k": s})):  # noqa: UP031
        assert "hunter2" not in shown
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("key %s %r", s, s)
    assert "hunter2" not in caplog.text
    with pytest.raises(TypeError):
        json.dumps({"key": s})
    assert s.reveal() == "hunter2-private-key"
    assert s == Secret("hunter2-private-key") and s != Secret("other")


def test_the_store_is_private_to_root(tmp_path):
    store = SecretStore(tmp_path / "secrets" / "secrets.db")
    store.put("vpn/box", Secret("k1"))
    store.put("vpn/psk/1", Secret("p1"))
    store.put("vpn/psk/2", Secret("p2"))
    assert stat.S_IMODE(os.stat(tmp_path / "secrets").st_mode) == 0o700
    for f in (tmp_path / "secrets").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert store.get("vpn/box").reveal() == "k1"
    assert store.get("missing") is None
    assert {k: v.reveal() for k, v in store.get_many("vpn/psk/").items()} == {
        "vpn/psk/1": "p1",
        "vpn/psk/2": "p2",
    }
