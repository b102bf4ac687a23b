"""The clock's API methods: what the box asks for the time, and whether it has it."""

from ..accounts.service import Caller
from ..api.methods import method
from ..box import Box
from . import chrony
from .capability import ClockCapability


@method("clock.status")
def clock_status(box: Box, caller: Caller):
    """The time servers the box asks (while time is on), how many must agree, and
    whether the clock is synchronised now (None: nothing here to ask)."""
    _, desired = box.head()
    return {
        "time_sync": desired.box.time_sync,
        "servers": [{"host": s.host, "operator": s.operator} for s in chrony.SERVERS],
        "agree": chrony.MINSOURCES,
        "nts": True,
        **box.capability(ClockCapability).tracking(),
    }
