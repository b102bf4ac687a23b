"""Reconcile: for each capability read facts, plan, apply only that, then verify.

Each capability implements the contract in appliance/capability.py. After a change, only the capabilities whose ``depends_on`` changed are reconciled;
at start and on the agent's timer, all of them are (which also heals drift).
"""

import logging
import time
from dataclasses import dataclass, field

from .capability import Capability, Check
from .errors import ApplianceError
from .schema import Desired

__all__ = ["Check", "Outcome", "reconcile"]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    capability: str
    actions: list[str] = field(default_factory=list)
    converged: bool = True
    error: str | None = None
    seconds: float = 0.0
    skipped: bool = False  # its part of the desired state did not change

    def to_json(self) -> dict:
        return {
            "capability": self.capability,
            "actions": self.actions,
            "converged": self.converged,
            "error": self.error,
            "seconds": round(self.seconds, 4),
            "skipped": self.skipped,
        }


def reconcile(
    capabilities: list[Capability],
    desired: Desired,
    skip: frozenset[str] = frozenset(),
    known: dict | None = None,
) -> list[Outcome]:
    """Converge every capability not in ``skip``; one failing does not stop the others.

    ``known`` maps a capability to the facts its last verify read: planning may start
    from them (the agent is the only writer), saving a read. The verify always reads
    afresh, and ``known`` is left holding those fresh facts.
    """
    known = {} if known is None else known
    outcomes = []
    for cap in capabilities:
        if cap.name in skip:
            outcomes.append(Outcome(cap.name, skipped=True))
            continue
        started = time.perf_counter()
        outcome = Outcome(cap.name)
        remembered = known.pop(cap.name, None)
        try:
            known[cap.name] = _converge(
                cap,
                desired,
                remembered if remembered is not None else cap.read_facts(desired),
                remembered is None,
                outcome,
            )
        except ApplianceError as err:
            outcome.converged, outcome.error = False, err.message
        except Exception as err:  # the loop must survive a failing system call
            log.exception("%s: reconcile failed", cap.name)
            outcome.converged, outcome.error = False, f"{type(err).__name__}: {err}"
        if outcome.error:
            log.error("%s: not converged: %s", cap.name, outcome.error)
        if not outcome.converged:
            known.pop(cap.name, None)
        outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    return outcomes


def _converge(cap: Capability, desired: Desired, facts, fresh: bool, outcome: Outcome):
    """Plan, apply, verify with a fresh read; returns the verified facts. If the facts
    planned from were remembered and the system changed behind the agent's back, the
    verify shows what is left and a second pass from fresh facts settles it."""
    for _ in range(2):
        actions = cap.plan(facts, desired)
        if not actions:
            return facts
        described = [str(a) for a in actions]
        outcome.actions += described
        log.info(
            "%s: applying %d action(s): %s",
            cap.name,
            len(actions),
            ", ".join(described[:5]) + (" ..." if len(actions) > 5 else ""),
        )
        try:
            cap.apply(actions)
        except Exception:
            if fresh:
                raise
            log.warning("%s: the system was not as remembered; reading it afresh", cap.name)
        facts, fresh = cap.read_facts(desired), True
    left = cap.plan(facts, desired)
    if left:
        outcome.converged = False
        outcome.error = f"still {len(left)} action(s) to do after applying"
    return facts
