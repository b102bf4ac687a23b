"""Which addresses are home: the box, the home's network, the VPN; nothing else."""

import pytest

from appliance.homenet import is_home

VPN = ("100.80.0.0/24", "fd00:77::/64")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "192.168.1.20",
        "10.77.0.2",
        "172.20.3.4",
        "fe80::1%eth0",
        "fd12::5",
        "::ffff:192.168.1.20",
        "100.80.0.7",
    ],
)
def test_home_addresses(address):
    assert is_home(address, VPN)


@pytest.mark.parametrize(
    "address",
    ["203.0.113.7", "8.8.8.8", "2001:db8::1", "::ffff:203.0.113.7", "100.64.0.10", "", None, "x"],
)
def test_the_internet_and_nonsense_are_not(address):
    assert not is_home(address, VPN)


def test_a_subnet_counts_only_once_the_household_names_it():
    assert not is_home("100.80.0.7") and is_home("100.80.0.7", ["100.80.0.0/24"])
