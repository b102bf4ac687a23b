"""The box's other TLS servers offer AEAD ciphers only in TLS 1.2: Postfix (25 with
STARTTLS, 465), Dovecot (993) and Prosody (5222 with STARTTLS, its file share on 5281),
the daemons the box ships, asked with `openssl s_client` from the world's namespace.
(The web UI's: tests/integration/test_webui_reach.py.)"""

import re

import pytest

from cblab.relaylab import RelayWorld

DOMAIN, ADDRESS = "box-t.test", "10.79.0.1"
CBC = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA"
AEAD = ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305")
SERVERS = {
    "smtp": (25, ["-starttls", "smtp"]),
    "submissions": (465, []),
    "imaps": (993, []),
    "xmpp": (5222, ["-starttls", "xmpp", "-xmpphost", DOMAIN]),
    "xmpp file share": (5281, []),
}


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    world = RelayWorld(tmp_path_factory.mktemp("tls"), {DOMAIN: ADDRESS})
    world.boxes[DOMAIN].api.call("chat.settings.set", enabled=True)
    yield world
    world.stop()


def s_client(world, port: int, extra: list[str], cipher: str):
    return world.ns.run(
        ["openssl", "s_client", "-connect", f"{ADDRESS}:{port}", *extra]
        + ["-tls1_2", "-cipher", cipher],
        check=False,
        input="",
        timeout=30,
    )


def negotiated(done) -> str | None:
    found = re.search(r"Cipher is (\S+)", done.stdout)
    return found.group(1) if found and found.group(1) != "(NONE)" else None


@pytest.mark.parametrize("server", SERVERS)
def test_tls_1_2_offers_aead_ciphers_only(relay, server):
    port, extra = SERVERS[server]
    refused = s_client(relay, port, extra, CBC)
    assert negotiated(refused) is None, refused.stdout[-800:]
    for aead in AEAD:
        accepted = s_client(relay, port, extra, aead)
        assert negotiated(accepted) == aead, (aead, accepted.stderr[-500:])
