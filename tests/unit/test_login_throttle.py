"""Failed logins slow down the place they come from, not the household: scenarios as
data (who tries, from where, when, with what, and what they are told)."""

import ipaddress
from dataclasses import replace

import pytest

from appliance.accounts.service import AccountService
from appliance.accounts.sessions import RuntimeStore
from appliance.accounts.throttle import canonical, is_home, login_keys, origin
from appliance.errors import RateLimited, Unauthorized
from appliance.schema import Desired

RIGHT, WRONG = "three unrelated words", "wrong wrong wrong"
VPN4, VPN6 = "10.77.0.0/20", "fd00:77::/64"


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def box(stores, tmp_path):
    _, secrets = stores
    clock = Clock()
    runtime = RuntimeStore(tmp_path / "secrets" / "runtime.db", clock=clock)
    service = AccountService(secrets, runtime)
    desired = service.claim(Desired.new(), "ana", RIGHT, "en")
    desired = service.add_user(desired, "bo", "member", "kilima cha mvua njema")
    vpn = replace(
        desired.vpn,
        ipv4_subnet=ipaddress.ip_network(VPN4),
        ipv6_subnet=ipaddress.ip_network(VPN6),
    )
    yield service, desired.replace(vpn=vpn), clock
    runtime.close()


def outcome(service, desired, name, passphrase, address):
    try:
        service.login(desired, name, passphrase, address)
    except RateLimited:
        return "wait"
    except Unauthorized:
        return "wrong"
    return "in"


# (seconds after the start, name, passphrase, address, what the person is told)
ATTACKER_FROM_THE_INTERNET = [
    (0, "ana", WRONG, "198.51.100.7", "wrong"),
    (0, "ana", WRONG, "198.51.100.7", "wrong"),
    (0, "ana", WRONG, "198.51.100.7", "wrong"),
    (0.5, "ana", RIGHT, "198.51.100.7", "wait"),  # the attacker's address waits
    (0.5, "ana", RIGHT, "203.0.113.50", "wait"),  # and the account, from the Internet
    (0.5, "ana", RIGHT, "192.168.1.20", "in"),  # not from home
    (0.5, "ana", RIGHT, "10.77.0.5", "in"),  # nor through the VPN
    (0.5, "ana", RIGHT, "fd00:77::5", "in"),
    (0.5, "ana", RIGHT, "::ffff:192.168.1.20", "in"),  # an IPv6 socket's IPv4 client
    (0.5, "ana", RIGHT, "fe80::1", "in"),
    (0.5, "bo", "kilima cha mvua njema", "203.0.113.50", "in"),  # other accounts: untouched
]

ROTATING_ADDRESSES = [  # a new address for every try: the account's counter still grows
    (0, "ana", WRONG, "198.51.100.1", "wrong"),
    (0, "ana", WRONG, "198.51.100.2", "wrong"),
    (0, "ana", WRONG, "2001:db8:1::1", "wrong"),
    (0, "ana", WRONG, "2001:db8:2::1", "wait"),
    (2, "ana", WRONG, "2001:db8:3::1", "wrong"),
    (2, "ana", RIGHT, "2001:db8:4::1", "wait"),
    (2, "ana", RIGHT, "192.168.1.20", "in"),
]

ONE_SLASH_64_IS_ONE_ADDRESS = [
    (0, "nobody", WRONG, "2001:db8:5:6::1", "wrong"),
    (0, "nobody2", WRONG, "2001:db8:5:6::2", "wrong"),
    (0, "nobody3", WRONG, "2001:db8:5:6:aaaa::3", "wrong"),
    (0, "bo", "kilima cha mvua njema", "2001:db8:5:6::4", "wait"),  # the same /64
    (0, "bo", "kilima cha mvua njema", "2001:db8:5:7::4", "in"),  # the next /64
]

A_NOISY_DEVICE_AT_HOME = [  # failures at home slow home logins to that account...
    (0, "ana", WRONG, "192.168.1.30", "wrong"),
    (0, "ana", WRONG, "192.168.1.31", "wrong"),
    (0, "ana", WRONG, "192.168.1.32", "wrong"),
    (0, "ana", RIGHT, "192.168.1.33", "wait"),
    (0, "ana", RIGHT, "10.77.0.9", "in"),  # ...not the VPN's
    (0, "ana", RIGHT, "198.51.100.9", "in"),  # nor the Internet's
]

THE_PAUSE_ENDS = [
    (0, "ana", WRONG, "198.51.100.7", "wrong"),
    (0, "ana", WRONG, "198.51.100.7", "wrong"),
    (0, "ana", WRONG, "198.51.100.7", "wrong"),
    (0.5, "ana", RIGHT, "198.51.100.8", "wait"),
    (1.5, "ana", RIGHT, "198.51.100.8", "in"),  # success forgives the account
]


@pytest.mark.parametrize(
    "script",
    [
        ATTACKER_FROM_THE_INTERNET,
        ROTATING_ADDRESSES,
        ONE_SLASH_64_IS_ONE_ADDRESS,
        A_NOISY_DEVICE_AT_HOME,
        THE_PAUSE_ENDS,
    ],
    ids=["internet-attacker", "rotating", "slash-64", "noisy-home-device", "pause-ends"],
)
def test_failed_logins_slow_down_where_they_come_from(box, script):
    service, desired, clock = box
    start = clock.now
    seen = []
    for at, name, passphrase, address, _ in script:
        clock.now = start + at
        seen.append(outcome(service, desired, name, passphrase, address))
    assert seen == [row[-1] for row in script]


@pytest.mark.parametrize(
    "address, where",
    [
        ("10.77.0.5", "vpn"),
        ("fd00:77::1234", "vpn"),
        ("10.1.2.3", "home"),
        ("172.16.0.1", "home"),
        ("192.168.178.20", "home"),
        ("169.254.1.1", "home"),
        ("127.0.0.1", "home"),
        ("::1", "home"),
        ("fd12:3456::1", "home"),
        ("fe80::1", "home"),
        ("::ffff:10.77.0.5", "vpn"),
        ("100.64.0.1", "internet"),  # carrier-grade NAT: the ISP's, not the home's
        ("192.0.2.1", "internet"),
        ("8.8.8.8", "internet"),
        ("2001:db8::1", "internet"),
        ("::ffff:8.8.8.8", "internet"),
    ],
)
def test_where_an_address_is(box, address, where):
    _, desired, _ = box
    assert origin(canonical(address), desired.vpn) == where
    assert is_home(canonical(address)) == (where != "internet")


def test_an_account_is_counted_per_origin_and_an_ipv6_address_per_64(box):
    _, desired, _ = box
    assert login_keys("Ana", "2001:db8:1:2:3:4:5:6", desired.vpn) == [
        "address:2001:db8:1:2::/64",
        "user:ana@internet",
    ]
    assert login_keys("ana", "10.77.0.2", desired.vpn) == ["address:10.77.0.2", "user:ana@vpn"]


def test_old_failures_are_forgotten_so_the_table_stays_small(box):
    service, desired, clock = box
    for i in range(50):
        outcome(service, desired, f"guess{i}", WRONG, f"198.51.100.{i}")
    clock.now += 25 * 3600
    outcome(service, desired, "guess", WRONG, "203.0.113.1")
    assert service.runtime._run("SELECT count(*) FROM failures")[0][0] == 2
