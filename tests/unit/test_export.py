"""Device configs: what the WireGuard apps import, by file and by QR code."""

import io
import shutil
import subprocess

import pytest
import wgconfig

from appliance.errors import Conflict, NotFound
from appliance.vpn import export, keys
from appliance.vpn.schema import device_key_name, psk_name

from .conftest import commit, head


def config_of(vpn, device):
    return export.wg_quick(
        device,
        head(vpn).vpn,
        vpn.box_public_key(),
        vpn.secrets.get(device_key_name(device.id)),
        vpn.secrets.get(psk_name(device.id)),
    )


def parse(text):
    cfg = wgconfig.WGConfig()
    cfg.read_from_fileobj(io.StringIO(text))
    return cfg


def test_a_home_only_device_config(vpn):
    _, d = commit(vpn, vpn.add_device(head(vpn), 'Phone [Peer]\u00a0"x" = y', preshared_key=True))
    cfg = parse(config_of(vpn, d))
    assert keys.public_key(keys.Secret(cfg.interface["PrivateKey"])) == d.public_key
    assert cfg.interface["Address"] == [f"{d.ipv4}/32", f"{d.ipv6}/128"]
    assert list(cfg.peers) == [vpn.box_public_key()]  # the name cannot add a [Peer]
    peer = cfg.peers[vpn.box_public_key()]
    assert peer["Endpoint"] == "box.example.org:51820"
    assert peer["AllowedIPs"] == [str(head(vpn).vpn.ipv4_subnet), str(head(vpn).vpn.ipv6_subnet)]
    assert peer["PresharedKey"] == vpn.secrets.get(psk_name(d.id)).reveal()
    assert "DNS" not in cfg.interface


def test_a_full_tunnel_device_with_dns(vpn):
    _, d = commit(vpn, vpn.add_device(head(vpn), "laptop", mode="full", dns=["192.0.2.53"]))
    cfg = parse(config_of(vpn, d))
    assert cfg.peers[vpn.box_public_key()]["AllowedIPs"] == ["0.0.0.0/0", "::/0"]
    assert cfg.interface["DNS"] == "192.0.2.53"
    assert "PresharedKey" not in cfg.peers[vpn.box_public_key()]


def test_no_endpoint_no_config(vpn):
    desired, d = commit(vpn, vpn.add_device(head(vpn), "phone"))
    commit(vpn, vpn.change_settings(head(vpn), endpoint=None))
    with pytest.raises(Conflict, match="endpoint"):
        config_of(vpn, d)


def test_a_device_with_its_own_key_has_no_config_here(vpn):
    _, d = commit(
        vpn, vpn.add_device(head(vpn), "own", public_key=keys.public_key(keys.new_private_key()))
    )
    with pytest.raises(NotFound, match="own key"):
        config_of(vpn, d)


@pytest.mark.skipif(
    not shutil.which("zbarimg"),
    reason="zbarimg (zbar-tools) is not installed: "
    "`make test` installs it; cannot read the QR code back",
)
def test_the_qr_code_reads_back_as_the_exact_config(vpn, tmp_path):
    _, d = commit(vpn, vpn.add_device(head(vpn), "Téléphone", preshared_key=True))
    text = config_of(vpn, d)
    png = tmp_path / "qr.png"
    png.write_bytes(export.qr_png(text))
    out = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sbinary", str(png)], capture_output=True, check=True
    ).stdout
    assert out.decode().rstrip("\n") == text.rstrip("\n")
    svg = export.qr_svg(text)
    assert svg.startswith("<svg") and "http" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert export.qr_terminal(text).count("\n") > 20


@pytest.mark.parametrize(
    "name, expected",
    [("Grandma's phone", "Grandma-s-pho-7.conf"), ("هاتف", "home-7.conf"), ("a b", "a-b-7.conf")],
)
def test_file_names_are_valid_tunnel_names(name, expected):
    from appliance.vpn.schema import Device

    d = Device(7, name, "A" * 43 + "=", "10.0.0.2", "fd00::2")
    assert export.file_name(d) == expected
    assert len(expected.removesuffix(".conf")) <= 15
