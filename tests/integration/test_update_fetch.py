"""Fetching an update feed over HTTPS, from a real TLS server on this machine with a
throwaway CA: the feed and its bundle come through checked; an untrusted certificate, a
redirect to plain http, an endless body, an oversize feed and a silent server are each
refused with a plain reason, and nothing is left to install."""

import http.server
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance import imagesign
from appliance.errors import Invalid, UpdateRefused
from appliance.update import feed, fetch
from cbimage import publish

NOW = datetime.now(UTC)
BOARD, RUNNING, NEWER = "qemu-amd64", "2026.11.02.1", "2026.12.07.1"


def _name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_ca(where: Path, name: str):
    """A throwaway CA (PEM text) and a server certificate it signed for 127.0.0.1."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC) - timedelta(hours=1)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (where / f"{name}.crt").write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    (where / f"{name}.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca.public_bytes(pem).decode(), where / f"{name}.crt", where / f"{name}.key"


class Server:
    """A threaded HTTP(S) server on 127.0.0.1 serving DIR, with a few hostile paths."""

    def __init__(self, root: Path, cert: Path | None = None, key: Path | None = None):
        self.requests: list[str] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args):
                pass

            def do_GET(self):
                served.requests.append(self.path)
                if self.path.startswith("/to-http/"):
                    self.send_response(302)
                    self.send_header("Location", served.redirect_to + "feed.json")
                    self.end_headers()
                elif self.path.startswith("/to-https/"):
                    self.send_response(301)
                    self.send_header("Location", "/feed/" + self.path.rsplit("/", 1)[1])
                    self.end_headers()
                elif self.path.startswith("/endless/") and self.path.endswith(".raucb"):
                    self.send_response(200)  # no length: the body ends when it ends
                    self.end_headers()
                    try:
                        for _ in range(10_000):  # 640 MB at most, should the client not stop
                            self.wfile.write(b"\0" * 65536)
                    except OSError:
                        pass
                else:
                    super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.redirect_to = ""
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def site(tmp_path):
    """An HTTPS server (and a plain HTTP one) serving a published feed at /feed/."""
    public = imagesign.keygen(tmp_path / "update.key", tmp_path / "update.pub")
    root = tmp_path / "www"
    bundle = tmp_path / "built.raucb"
    bundle.write_bytes(bytes(range(256)) * 300)
    publish.publish(root / "feed", tmp_path / "update.key", NOW, bundle, BOARD, NEWER)
    for hostile in ("endless", "big"):
        (root / hostile).mkdir()
        for f in (root / "feed").iterdir():
            (root / hostile / f.name).write_bytes(f.read_bytes())
    (root / "big" / "feed.json").write_bytes(b" " * (feed.MAX_FEED + 1))
    ca, cert, key = make_ca(tmp_path, "test-ca")
    https, plain = Server(root, cert, key), Server(root)
    https.redirect_to = f"http://127.0.0.1:{plain.port}/feed/"
    yield https, plain, ca, public
    https.close()
    plain.close()


def url(server, path):
    return f"https://127.0.0.1:{server.port}/{path}/"


def test_a_feed_and_its_bundle_come_through_checked(site, tmp_path):
    https, _, ca, public = site
    data, signature = fetch.fetch_feed(url(https, "feed"), ca_pem=ca)
    bundle = feed.choose(data, signature, [public], RUNNING, BOARD, NOW)
    assert bundle is not None and str(bundle.version) == NEWER
    dest = tmp_path / "download.raucb"
    fetch.fetch_bundle(url(https, "feed"), bundle, dest, ca_pem=ca)
    assert dest.read_bytes() == bytes(range(256)) * 300


def test_an_https_redirect_is_followed(site):
    https, _, ca, public = site
    data, signature = fetch.fetch_feed(url(https, "to-https"), ca_pem=ca)
    assert feed.choose(data, signature, [public], RUNNING, BOARD, NOW) is not None


def test_a_certificate_the_box_does_not_trust_is_refused(site, tmp_path):
    """Not in the system's CAs; and a household's pinned CA is trusted alone."""
    https, _, _, _ = site
    other_ca, _, _ = make_ca(tmp_path, "other-ca")
    for pinned in (None, other_ca):
        with pytest.raises(fetch.Unreachable) as err:
            fetch.fetch_feed(url(https, "feed"), ca_pem=pinned)
        assert "its certificate is not trusted" in err.value.message
        assert err.value.field == "update_url"


def test_a_redirect_to_plain_http_is_refused(site):
    https, plain, ca, _ = site
    with pytest.raises(UpdateRefused) as err:
        fetch.fetch_feed(url(https, "to-http"), ca_pem=ca)
    assert err.value.message == (
        f"{url(https, 'to-http')}feed.json redirected to http://127.0.0.1:{plain.port}"
        "/feed/feed.json, which is not https://: refused"
    )
    assert plain.requests == []


@pytest.mark.parametrize(
    "address",
    [
        "http://updates.example.org/feed/",
        "file:///etc/",
        "https://user:secret@updates.example.org/feed/",
        "https:///feed/",
        "https://updates.example.org/feed/?x=1",
        "https://updates.example.org/feed/\r\nHost: evil",
    ],
)
def test_only_a_plain_https_address_is_asked(address):
    with pytest.raises(Invalid, match="is not an update feed address: use https://"):
        fetch.fetch_feed(address)


def test_an_endless_bundle_is_cut_at_its_signed_size(site, tmp_path):
    https, _, ca, public = site
    data, signature = fetch.fetch_feed(url(https, "endless"), ca_pem=ca)
    bundle = feed.choose(data, signature, [public], RUNNING, BOARD, NOW)
    dest = tmp_path / "download.raucb"
    t0 = time.monotonic()
    with pytest.raises(feed.BundleMismatch, match="larger than the 76800 bytes"):
        fetch.fetch_bundle(url(https, "endless"), bundle, dest, ca_pem=ca)
    assert time.monotonic() - t0 < 5
    assert not dest.exists()


def test_an_oversize_feed_is_refused(site):
    https, _, ca, _ = site
    with pytest.raises(UpdateRefused, match="larger than 1 MiB") as err:
        fetch.fetch_feed(url(https, "big"), ca_pem=ca)
    assert err.value.field == "update_feed"


def test_a_missing_feed_says_what_the_server_answered(site):
    https, _, ca, _ = site
    with pytest.raises(fetch.Unreachable, match="the server answered 404"):
        fetch.fetch_feed(url(https, "nowhere"), ca_pem=ca)


def test_a_server_that_never_answers_is_given_up_on():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        t0 = time.monotonic()
        with pytest.raises(fetch.Unreachable, match="no answer within 1 s"):
            fetch.fetch_feed(f"https://127.0.0.1:{silent.getsockname()[1]}/feed/", timeout=1)
        assert time.monotonic() - t0 < 5
    finally:
        silent.close()
