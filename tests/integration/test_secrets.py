"""Secrets stay secret: not in the log, not in the revisions, not in any API answer
but the one device config that carries that device's own key."""

import base64
import json
import os
import sqlite3
import stat

from .conftest import BOX_VPN_IP


def test_no_secret_appears_anywhere_it_should_not(lab):
    full = lab.api.call("vpn.device.add", name="full", mode="full", preshared_key=True)["device"]
    home = lab.api.call("vpn.device.add", name="home", preshared_key=True)["device"]
    lab.phone(0, full["id"])
    assert lab.phone_ns[0].ping(BOX_VPN_IP, timeout=3)
    lab.api.call("vpn.device.remove", device=home["id"])
    lab.api.call("config.rollback", revision=lab.api.call("config.history")[1]["revision"])
    lab.api.call("vpn.settings.set", listen_port=51821)

    paths = lab.box.paths
    with sqlite3.connect(paths.secrets_db) as db:
        secrets = {
            name: value
            for name, value in db.execute("SELECT name, value FROM secrets")
            if not name.endswith(".public")
        }
    assert len(secrets) == 5  # the box's key, two device keys, two preshared keys
    assert stat.S_IMODE(os.stat(paths.secrets_db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths.secrets_db.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths.state_db).st_mode) == 0o600

    answers = [
        lab.api.call(m)
        for m in ("status", "vpn.device.list", "vpn.settings.get", "config.history", "reconcile")
    ]
    answers += [lab.api.call("config.diff", a=1), lab.api.call("vpn.device.get", device="full")]
    with sqlite3.connect(paths.state_db) as db:
        revisions = [row[0] for row in db.execute("SELECT doc FROM revisions")]
    places = {
        "agent log": lab.box.log.read_text(),
        "API answers": json.dumps(answers),
        "revisions": "\n".join(revisions),
    }
    for name, value in secrets.items():
        for where, text in places.items():
            assert value not in text, f"{name} leaked into the {where}"
            assert base64.b64decode(value).hex() not in text, f"{name} (as hex) in the {where}"

    # The one exception, by design: a device's own config carries its own keys only.
    config = lab.api.call("vpn.device.config", device="full")["config"]
    assert secrets[f"vpn/device/{full['id']}"] in config
    assert secrets[f"vpn/psk/{full['id']}"] in config
    assert secrets["vpn/box"] not in config and secrets[f"vpn/device/{home['id']}"] not in config
