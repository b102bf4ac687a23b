"""`commonsbox clock`: where the box's time comes from, and turning that off or on."""

from ..api.client import Client
from ..terminal import print_change


def cmd_clock_status(api: Client, args) -> object:
    return api.call("clock.status")


def cmd_clock_set(api: Client, args) -> object:
    return api.call("box.settings.set", time_sync=args.state == "on", why=args.why)


def print_clock(status: dict) -> None:
    if not status["time_sync"]:
        print("time from the Internet: OFF (the clock runs on its own, and drifts)")
        return
    print(
        f"time from the Internet: on, authenticated (NTS); {status['agree']} of these "
        "must agree before the clock moves:"
    )
    for s in status["servers"]:
        print(f"  {s['host']}  ({s['operator']})")
    if status["synchronised"] is not None:
        print(
            f"synchronised with {status['source']}"
            if status["synchronised"]
            else "not synchronised yet"
        )


def commands(sub, leaf) -> None:
    clock = sub.add_parser(
        "clock", help="the box's time: from NTS time servers, or off"
    ).add_subparsers(dest="clock_cmd", required=True)
    leaf(
        clock,
        "status",
        cmd_clock_status,
        "where the time comes from, and whether it is set",
        print_clock,
    )
    p = leaf(
        clock, "set", cmd_clock_set, "ask time servers for the time (on) or not (off)", print_change
    )
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--why")
