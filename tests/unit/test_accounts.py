"""Accounts: passphrases, sessions, failed logins and the setup code, with a fake clock."""

import time

import pytest

from appliance.accounts import passwords
from appliance.accounts.service import ANONYMOUS, ROOT, AccountService
from appliance.accounts.sessions import IDLE_TIMEOUT, SETUP_CODE_LIFETIME, RuntimeStore
from appliance.errors import Conflict, Invalid, RateLimited, Unauthorized
from appliance.schema import Desired


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def accounts(stores, tmp_path):
    _, secrets = stores
    clock = Clock()
    runtime = RuntimeStore(tmp_path / "secrets" / "runtime.db", clock=clock)
    service = AccountService(secrets, runtime)
    desired = service.claim(Desired.new(), "ana", "three unrelated words", "pt")
    yield service, desired, clock
    runtime.close()


@pytest.mark.parametrize(
    "weak",
    [
        "short",
        "aaaaaaaaaaaaaaaa",
        "password1234",
        "Commonsbox2024!",
        "ana is the best",
        "x" * 300,
        "line\nbreak here ok",
    ],
)
def test_weak_passphrases_are_refused(weak):
    with pytest.raises(Invalid):
        passwords.check_strength(weak, "ana")


@pytest.mark.parametrize(
    "good",
    [
        "three unrelated words",
        "correct horse battery staple",
        "مرحبا بكم في البيت",
        "Kilimanjaro-nyumbani-7",
    ],
)
def test_reasonable_passphrases_pass(good):
    assert passwords.check_strength(good, "ana") == good


def test_hashes_are_argon2id_and_verify():
    stored = passwords.hash_passphrase("three unrelated words")
    assert stored.reveal().startswith("$argon2id$") and "three" not in repr(stored)
    assert passwords.verify(stored, "three unrelated words")
    assert not passwords.verify(stored, "three unrelated word")
    assert not passwords.verify(None, "anything at all")


def test_claiming_twice_is_refused(accounts):
    service, desired, _ = accounts
    assert desired.box.claimed and desired.accounts.user("ana").role == "admin"
    with pytest.raises(Conflict):
        service.claim(desired, "eve", "another strong phrase", "en")


def test_a_session_lives_while_used_and_dies_when_idle(accounts):
    service, desired, clock = accounts
    token, user = service.login(desired, "ana", "three unrelated words", "192.0.2.1")
    assert service.caller(desired, token).name == "ana"
    clock.now += IDLE_TIMEOUT - 5
    assert service.caller(desired, token).role == "admin"  # used: the idle clock restarts
    clock.now += IDLE_TIMEOUT + 1
    assert service.caller(desired, token) == ANONYMOUS
    assert service.caller(desired, "made-up-token") == ANONYMOUS
    assert service.caller(desired, None) == ANONYMOUS


def test_failed_logins_slow_down_per_account_and_per_address(accounts):
    service, desired, clock = accounts
    for _ in range(3):  # three free mistakes
        with pytest.raises(Unauthorized):
            service.login(desired, "ana", "wrong wrong wrong", "192.0.2.1")
    with pytest.raises(RateLimited) as err:  # then a pause, for this account from anywhere
        service.login(desired, "ana", "three unrelated words", "192.0.2.2")
    assert 0 < err.value.retry_after <= 1
    with pytest.raises(RateLimited):  # and for this address, whatever the account
        service.login(desired, "nobody", "whatever whatever", "192.0.2.1")
    clock.now += 1.5
    with pytest.raises(Unauthorized):
        service.login(desired, "ana", "wrong wrong wrong", "192.0.2.1")
    with pytest.raises(RateLimited) as err:
        service.login(desired, "ana", "three unrelated words", "192.0.2.1")
    assert 1 < err.value.retry_after <= 2  # the pause grows
    clock.now += 3
    token, _ = service.login(desired, "ana", "three unrelated words", "192.0.2.1")
    assert token
    # success forgives: the next mistake is free again
    with pytest.raises(Unauthorized):
        service.login(desired, "ana", "wrong wrong wrong", "192.0.2.1")


def test_the_setup_code_expires_and_wrong_codes_slow_down(accounts):
    service, _, clock = accounts
    code, expires = service.runtime.setup_code()
    assert len(code) == 14 and expires == clock.now + SETUP_CODE_LIFETIME
    service.check_setup_code(code.lower(), "192.0.2.1")  # typed in lower case on a phone
    for _ in range(3):
        with pytest.raises(Unauthorized):
            service.check_setup_code("AAAA-BBBB-CCCC", "192.0.2.1")
    with pytest.raises(RateLimited):
        service.check_setup_code(code, "192.0.2.1")
    clock.now += SETUP_CODE_LIFETIME + 1
    with pytest.raises(Unauthorized):
        service.check_setup_code(code, "192.0.2.7")
    renewed, _ = service.runtime.setup_code()
    assert renewed != code


def test_one_time_links_work_once_and_expire_after_a_day(accounts):
    service, _, clock = accounts
    token, expires = service.runtime.open_link(7)
    assert expires == clock.now + 24 * 3600
    assert service.runtime.redeem_link(token) == 7
    assert service.runtime.redeem_link(token) is None
    late, _ = service.runtime.open_link(8)
    clock.now += 24 * 3600 + 1
    assert service.runtime.redeem_link(late) is None
    assert service.runtime.redeem_link("made-up") is None


def test_removing_a_user_takes_their_devices_and_the_state_stays_loadable(accounts, vpn):
    service, desired, _ = accounts
    desired = service.add_user(desired, "bo", "member", "kilima cha mvua njema")
    desired = desired.replace(vpn=vpn.store.head()[1].vpn)
    desired, device = vpn.add_device(desired, "bo's phone", owner="bo")
    desired = service.remove_user(desired, "bo", caller=ROOT)
    assert desired.vpn.devices == ()
    assert Desired.from_json(desired.to_json()) == desired


def test_a_second_factor_with_recovery_codes(accounts):
    import pyotp

    service, desired, clock = accounts
    uri = service.totp_begin(desired, "ana")
    secret = pyotp.parse_uri(uri).secret
    with pytest.raises(Unauthorized):
        service.totp_confirm(desired, "ana", "000000")
    desired, codes = service.totp_confirm(desired, "ana", pyotp.TOTP(secret).now())
    assert desired.accounts.user("ana").totp and len(codes) == 10
    assert service.secrets.get("account/ana/totp-pending") is None
    with pytest.raises(Unauthorized) as err:
        service.login(desired, "ana", "three unrelated words", "192.0.2.1")
    assert err.value.field == "otp_needed"
    with pytest.raises(Unauthorized):
        service.login(desired, "ana", "three unrelated words", "192.0.2.1", otp="123456")
    token, _ = service.login(
        desired, "ana", "three unrelated words", "192.0.2.1", otp=pyotp.TOTP(secret).now()
    )
    clock.now += 10  # the failure above made the next try wait a little
    token, _ = service.login(
        desired, "ana", "three unrelated words", "192.0.2.1", otp=codes[0].upper()
    )
    with pytest.raises(Unauthorized):  # a recovery code works once
        service.login(desired, "ana", "three unrelated words", "192.0.2.1", otp=codes[0])
    desired = service.totp_disable(desired, "ana", "three unrelated words")
    clock.now += 10
    assert service.login(desired, "ana", "three unrelated words", "192.0.2.1")[0]


def test_a_member_language_in_an_older_document_still_loads_and_moves_to_the_runtime_store(
    stores, tmp_path
):
    _, secrets = stores
    doc = Desired.new().to_json()
    doc["accounts"] = {"users": [{"name": "ana", "role": "admin", "language": "sw"}]}
    desired = Desired.from_json(doc)  # a revision stored before languages were preferences
    runtime = RuntimeStore(tmp_path / "secrets" / "runtime.db")
    service = AccountService(secrets, runtime)
    service.adopt_languages(desired)
    ana = desired.accounts.user("ana")
    assert service.user_json(ana)["language"] == "sw"
    assert "language" not in desired.to_json()["accounts"]["users"][0]  # not stored again
    service.set_language(desired, "ana", None)  # back to the browser's choice
    service.adopt_languages(desired)  # the next start: the member's choice stands
    assert "language" not in service.user_json(ana)
    runtime.close()


def _with_totp(service, desired):
    import pyotp

    secret = pyotp.parse_uri(service.totp_begin(desired, "ana")).secret
    desired, codes = service.totp_confirm(desired, "ana", pyotp.TOTP(secret).now())
    return desired, pyotp.TOTP(secret), codes


def test_an_authenticator_code_works_once_even_after_a_restart(accounts, tmp_path):
    service, desired, clock = accounts
    desired, totp, _ = _with_totp(service, desired)
    now = time.time()
    code, older = totp.at(now + 30), totp.at(now)  # the next window's: the confirm used this
    service.login(desired, "ana", "three unrelated words", "192.168.1.2", otp=code)
    with pytest.raises(Unauthorized) as err:  # seen over a shoulder, typed again at once
        service.login(desired, "ana", "three unrelated words", "192.168.1.3", otp=code)
    assert err.value.field == "otp"
    with pytest.raises(Unauthorized):  # nor an older one still inside the window
        service.login(desired, "ana", "three unrelated words", "192.168.1.3", otp=older)
    service.runtime.close()  # the agent restarts
    service.runtime = RuntimeStore(tmp_path / "secrets" / "runtime.db", clock=clock)
    clock.now += 60
    with pytest.raises(Unauthorized):
        service.login(desired, "ana", "three unrelated words", "192.168.1.3", otp=code)


def test_two_logins_racing_with_one_recovery_code_one_wins(accounts, monkeypatch):
    import threading

    service, desired, _ = accounts
    desired, _, codes = _with_totp(service, desired)
    store_get = service.secrets.get

    def slow_get(name):  # a busy card: the time between reading and writing back grows
        value = store_get(name)
        time.sleep(0.005)
        return value

    monkeypatch.setattr(service.secrets, "get", slow_get)
    user = desired.accounts.user("ana")
    for code in codes:
        start = threading.Barrier(4)
        won = []

        def spend(code=code, start=start, won=won):
            start.wait()
            won.append(service._second_factor_ok(user, code))

        threads = [threading.Thread(target=spend) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == [False, False, False, True], code
    assert service.secrets.get("account/ana/recovery").reveal() == "[]"
