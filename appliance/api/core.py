"""The box's own API methods: status, the configuration's history, the box's settings, the
factory reset and the hardware's survey."""

from ..accounts.service import Caller
from ..box import Box
from ..errors import Invalid
from ..validate import UNSET
from ..vpn.api import visible_devices
from .methods import BOOL, INT, OPT_INT, REQUIRED, TEXT, WHY, change, changed, method, named, reason


@method("status", access="member", hardware=True)
def status(box: Box, caller: Caller):
    result = box.status()
    if not caller.manages_box:
        # A member sees what is theirs: their devices, and who changed what only when
        # it was them (another's "why" names that person's devices).
        mine = {d.id for d in visible_devices(box, caller)}
        result["vpn"]["devices"] = [d for d in result["vpn"]["devices"] if d["id"] in mine]
        if result["revision"]["who"] != caller.who:
            result["revision"].update(who=None, why=None)
        result["last_reconcile"] = []
    return result


@method("reconcile")
def run_reconcile(box: Box, caller: Caller):
    return [o.to_json() for o in box.reconcile()]


@method("config.history", limit=(INT, 50), before=(OPT_INT, None))
def history(box: Box, caller: Caller, limit, before):
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000", "limit")
    return [r.to_json() for r in box.store.history(limit, before)]


@method("config.diff", a=(INT, REQUIRED), b=(OPT_INT, None))
def diff(box: Box, caller: Caller, a, b):
    head, _ = box.head()
    return {"a": a, "b": b or head.n, "diff": box.diff(a, b or head.n)}


@method("config.rollback", revision=(INT, REQUIRED))
def rollback(box: Box, caller: Caller, revision):
    box.store.revision(revision)  # NotFound before anything changes
    new, outcomes = box.rollback(revision, caller.who)
    return changed(new, outcomes)


@method("config.pin", revision=(INT, REQUIRED), pinned=(BOOL, True))
def pin(box: Box, caller: Caller, revision, pinned):
    """A pinned revision is kept however many changes follow (appliance/store.py)."""
    with box.lock:
        return box.store.pin(revision, pinned).to_json()


@method("config.retention", keep=(OPT_INT, None))
def retention(box: Box, caller: Caller, keep):
    """How many of the newest revisions are kept (besides the pinned ones); KEEP sets it."""
    with box.lock:
        return {"keep": box.store.keep if keep is None else box.store.set_keep(keep)}


@method(
    "box.settings.set",
    name=(TEXT, UNSET),
    language=(TEXT, UNSET),
    timezone=(TEXT, UNSET),
    manage_from_anywhere=(BOOL, UNSET),
    time_sync=(BOOL, UNSET),
    update_check=(BOOL, UNSET),
    **WHY,
)
def box_settings_set(box: Box, caller: Caller, why, **changes):
    from ..schema import BoxSettings

    changes = named(changes)
    return change(
        box,
        caller.who,
        reason(why, "change box settings: " + ", ".join(sorted(changes))),
        lambda d: d.with_box(BoxSettings.from_json({**d.box.to_json(), **changes}, "")),
    )


@method("webui.reach", access="public")
def webui_reach(box: Box, caller: Caller):
    """What the web UI needs to tell a visitor at home (or on the VPN) from the Internet:
    the household's own networks (appliance/homenet.py) and whether it widened the
    management pages to anywhere."""
    _, desired = box.head()
    vpn = desired.vpn
    return {
        "networks": [str(n) for n in (vpn.ipv4_subnet, vpn.ipv6_subnet, *vpn.home_networks)],
        "anywhere": desired.box.manage_from_anywhere,
    }


@method("box.factory_reset", access="root", hardware=True)
def box_factory_reset(box: Box, caller: Caller):
    """Forget the household: accounts, secrets, devices, history; the disks' contents
    stay (appliance/reset.py). The hardware service asks for it after the button."""
    from ..reset import factory_reset

    factory_reset(box)
    return {"claimed": False}


@method("hardware.status", access="member")
def hardware_status(box: Box, caller: Caller):
    """The board and its optional devices (clock, sensor, display, watchdog, GPIO):
    absent hardware is reported, never an error."""
    return box.hardware_survey()
