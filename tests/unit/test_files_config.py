"""The file share's sshd_config: what it lets in, as data."""

from appliance.files.capability import sshd_config
from appliance.schema import Desired
from appliance.vpn.schema import VpnSettings


def config(**vpn) -> dict[str, list[str]]:
    d = Desired.new()
    if vpn:
        d = d.replace(vpn=VpnSettings.from_json({**d.vpn.to_json(), **vpn}))
    out: dict[str, list[str]] = {}
    for line in sshd_config(d).decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split(" ", 1)
            out.setdefault(key, []).append(value)
    return out


def test_it_listens_only_on_the_boxs_vpn_addresses():
    c = config(ipv4_subnet="10.42.0.0/24", ipv6_subnet="fd00:42::/64")
    assert c["ListenAddress"] == ["10.42.0.1:22", "[fd00:42::1]:22"]


def test_it_is_sftp_only_by_password_for_the_household_locked_in_its_folders():
    c = config()
    assert c["ForceCommand"] == ["internal-sftp -u 0007 -d /%u"]
    assert c["ChrootDirectory"] == ["/var/lib/commonsbox/private/files"]
    assert c["AllowGroups"] == ["cbfiles"] and c["PermitRootLogin"] == ["no"]
    assert c["PasswordAuthentication"] == ["yes"] and c["PubkeyAuthentication"] == ["no"]
    for forwarding in (
        "AllowTcpForwarding",
        "AllowStreamLocalForwarding",
        "AllowAgentForwarding",
        "X11Forwarding",
        "PermitTunnel",
        "PermitTTY",
    ):
        assert c[forwarding] == ["no"], forwarding
