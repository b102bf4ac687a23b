"""The box's clock as data: the chronyd configuration the agent renders (time from NTS
servers only, two of them agreeing, no server role, the saved time on the data partition),
what turning time off leaves, the plan that converges it, and the household's two switches
for what the box contacts by itself (time, the update check) in the box's settings."""

from dataclasses import replace

import pytest

from appliance.accounts.service import ROOT
from appliance.api.methods import call
from appliance.box import Box
from appliance.clock import chrony
from appliance.clock.capability import CONFIG, ClockCapability
from appliance.daemonconfig import Facts, fingerprint
from appliance.errors import Invalid
from appliance.paths import Paths
from appliance.schema import BoxSettings, Desired
from appliance.system import System


def directives(conf: bytes) -> list[list[str]]:
    """The configuration as chronyd reads it: one directive a line, comments skipped."""
    return [
        line.split()
        for line in conf.decode().splitlines()
        if line.strip() and line.lstrip()[0] not in "#!;%"
    ]


def named(conf: bytes, name: str) -> list[list[str]]:
    return [d[1:] for d in directives(conf) if d[0].lower() == name]


ON, OFF = chrony.config(sync=True), chrony.config(sync=False)
# What would let chronyd take time from somewhere the agent did not write, or give it out.
OTHER_SOURCES = ("pool", "peer", "refclock", "sourcedir", "confdir", "include", "broadcast")
SERVER_ROLE = ("allow", "deny", "broadcast", "local", "ntsserverkey", "ntsservercert")


def test_time_comes_only_from_nts_servers_of_different_operators():
    servers = named(ON, "server")
    assert [s[0] for s in servers] == [s.host for s in chrony.SERVERS]
    assert len(servers) >= 3
    for s in servers:
        assert "nts" in s[1:] and "iburst" in s[1:], s  # authenticated, quick at start
    assert len({s.operator for s in chrony.SERVERS}) == len(chrony.SERVERS)
    for name in OTHER_SOURCES:
        assert named(ON, name) == [], name
    # An unauthenticated source, should one ever be added, is never used.
    assert named(ON, "authselectmode") == [["require"]]


def test_one_server_cannot_move_the_clock_alone():
    assert named(ON, "minsources") == [["2"]]
    assert chrony.MINSOURCES == 2 < len(chrony.SERVERS)


def test_the_clock_steps_only_in_its_first_updates_then_slews():
    assert named(ON, "makestep") == [["1", "3"]]
    # Time-checks of the servers' certificates wait for the first update only: a box with
    # no battery clock starts far off, and two agreeing servers still make that update.
    assert named(ON, "nocerttimecheck") == [["1"]]


@pytest.mark.parametrize("conf", [ON, OFF], ids=["on", "off"])
def test_it_serves_no_one_and_takes_commands_only_on_its_unix_socket(conf):
    assert named(conf, "port") == [["0"]]
    assert named(conf, "cmdport") == [["0"]]
    assert named(conf, "bindcmdaddress") == [[chrony.SOCKET]]
    for name in SERVER_ROLE:
        assert named(conf, name) == [], name


@pytest.mark.parametrize("conf", [ON, OFF], ids=["on", "off"])
def test_the_saved_time_is_on_the_data_partition_and_the_kernel_keeps_the_rtc(conf):
    """The drift file's modification time is the last time chronyd knew: `chronyd -s`
    (the image's unit) moves a clock that is behind it forward. It is on the data
    partition, which both root slots share. chronyd itself reads no RTC (-s would set
    the clock back to a flat battery's); rtcsync lets the kernel store the time in it and
    tells the hardware service that the clock is synchronised."""
    assert named(conf, "driftfile") == [[chrony.DRIFT]]
    assert chrony.DRIFT.startswith("/var/lib/commonsbox/")
    assert named(conf, "rtcsync") == [[]]
    assert named(conf, "rtcfile") == []
    assert named(conf, "rtcdevice") == [["/dev/null"]]


def test_time_off_asks_no_one():
    assert named(OFF, "server") == []
    for name in OTHER_SOURCES:
        assert named(OFF, name) == [], name
    assert b"time.cloudflare.com" not in OFF


def test_every_line_is_checked():
    assert all(c == "\n" or c >= " " for c in ON.decode())
    with pytest.raises(Invalid, match="control character"):
        chrony.config(sync=True, servers=(chrony.TimeServer("evil\nallow all", "x"),))


# -- the box's settings: time and the update check, each on by default ------------------


def test_the_box_s_switches_are_on_by_default_and_round_trip():
    fresh = BoxSettings()
    assert fresh.time_sync is True and fresh.update_check is True
    # Left out while on, so a document stored before they existed reads the same.
    assert "time_sync" not in fresh.to_json() and "update_check" not in fresh.to_json()
    off = replace(fresh, time_sync=False, update_check=False)
    assert off.to_json()["time_sync"] is False and off.to_json()["update_check"] is False
    assert BoxSettings.from_json(off.to_json()) == off
    assert Desired.from_json(Desired.new().with_box(off).to_json()).box == off
    with pytest.raises(Invalid) as refused:
        BoxSettings.from_json({"name": "Home", "time_sync": "no"})
    assert refused.value.field == "box.time_sync"


@pytest.fixture
def box(tmp_path):
    box = Box(Paths(tmp_path), backend=None, system=System(root=tmp_path))
    yield box
    box.close()


def test_the_switches_go_through_the_api_into_a_revision(box):
    said = call(box, ROOT, "box.settings.set", {"time_sync": False, "update_check": False})
    revision, desired = box.head()
    assert said["revision"] == revision.n
    assert (desired.box.time_sync, desired.box.update_check) == (False, False)
    assert revision.why == "change box settings: time_sync, update_check"
    assert desired.box.to_json() | {"time_sync": False, "update_check": False} == (
        desired.box.to_json()
    )  # what status shows as the box's settings
    with pytest.raises(Invalid) as refused:
        call(box, ROOT, "box.settings.set", {"time_sync": "off"})
    assert refused.value.field == "time_sync"
    assert box.head()[0].n == revision.n  # nothing stored
    call(box, ROOT, "box.settings.set", {"time_sync": True})
    assert box.head()[1].box.time_sync is True and box.head()[1].box.update_check is False


def test_the_clock_status_names_the_servers_and_whether_time_is_on(box):
    shown = call(box, ROOT, "clock.status", {})
    assert shown["time_sync"] is True and shown["agree"] == 2
    assert [s["host"] for s in shown["servers"]] == [s.host for s in chrony.SERVERS]
    assert shown["synchronised"] is None  # no chronyd here: nothing to ask
    call(box, ROOT, "box.settings.set", {"time_sync": False})
    assert call(box, ROOT, "clock.status", {})["time_sync"] is False


# -- converging: the agent writes the file and restarts chronyd only when it changes ----


def a_box_with_chrony(tmp_path) -> System:
    system = System(root=tmp_path)
    system.write("/usr/sbin/chronyd", b"", 0o755)
    system.write("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n_chrony:x:101:104::/:/x\n")
    system.write("/etc/group", b"root:x:0:\n_chrony:x:104:\n")
    return system


def facts_for(cap: ClockCapability, desired: Desired, running=True) -> Facts:
    """What the system has once DESIRED's configuration is in place and chronyd runs."""
    f = cap.files(desired)[CONFIG]
    return Facts(
        files={CONFIG: fingerprint(f, (0, 0))},
        running={"chronyd": running},
        ready=True,
        ids={("root", "root"): (0, 0)},
    )


def test_the_plan_writes_the_config_then_starts_chronyd_and_restarts_it_only_on_change(
    tmp_path,
):
    cap = ClockCapability(a_box_with_chrony(tmp_path))
    on = Desired.new()
    off = on.with_box(replace(on.box, time_sync=False))
    fresh = Facts(files={CONFIG: None}, running={"chronyd": False}, ready=True, ids={})
    assert [str(a) for a in cap.plan(fresh, on)] == [f"write 1 file(s): {CONFIG}", "start chronyd"]
    assert cap.plan(facts_for(cap, on), on) == []  # nothing to do: nothing touched
    assert [str(a) for a in cap.plan(facts_for(cap, on), off)] == [
        f"write 1 file(s): {CONFIG}",
        "reload chronyd",  # a restart: chronyd reads its configuration only at start
    ]
    assert cap.plan(facts_for(cap, off), off) == []
    assert [str(a) for a in cap.plan(facts_for(cap, off, running=False), off)] == [
        "start chronyd"  # off still runs chronyd: it keeps the saved time
    ]
    assert cap.depends_on(on) != cap.depends_on(off)
    assert cap.depends_on(on) == cap.depends_on(on.with_box(replace(on.box, name="Casa")))


def test_where_there_is_no_chronyd_it_does_nothing_and_reports_nothing(tmp_path):
    cap = ClockCapability(System(root=tmp_path))  # the box-in-a-namespace without its root
    facts = cap.read_facts(Desired.new())
    assert cap.plan(facts, Desired.new()) == []
    assert cap.health(facts, Desired.new()) == []
    assert not cap.uses_storage  # it runs while the encrypted storage is locked


def test_the_image_has_chrony_and_not_timesyncd_and_the_agent_starts_it():
    from cbimage import recipe

    assert "chrony" in recipe.packages("arm64") and "chrony" in recipe.packages("amd64")
    assert "systemd-timesyncd" not in recipe.packages("arm64")
    assert "chrony.service" in recipe.RELAY_UNITS  # disabled in the image until configured


def test_the_daily_update_check_asks_nothing_once_the_household_turned_it_off(box):
    call(box, ROOT, "update.settings.set", {"feed": "https://updates.example/feed/"})
    call(box, ROOT, "box.settings.set", {"update_check": False})
    said = call(box, ROOT, "update.auto", {})
    assert said == {"skipped": "the household turned the update check off"}
