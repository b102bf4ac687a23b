"""The factory-reset button as a pure state machine, fed (pressed, now) samples.

Hold it 10 s: "reset-requested" (the display asks for confirmation). Release, then press
again within 30 s: "reset-confirmed". No second press in time: "reset-expired". The
window starts at the release, so a long hold does not eat the time to read the screen.
"""

from dataclasses import dataclass
from typing import Literal

HOLD_SECONDS = 10.0
CONFIRM_SECONDS = 30.0

ButtonEvent = Literal["reset-requested", "reset-confirmed", "reset-expired"]
ButtonState = Literal["idle", "holding", "requested", "awaiting-confirm"]


@dataclass(frozen=True)
class _Phase:
    state: ButtonState
    since: float  # when this phase began


class ButtonWatcher:
    def __init__(
        self, hold_seconds: float = HOLD_SECONDS, confirm_seconds: float = CONFIRM_SECONDS
    ) -> None:
        self._hold = hold_seconds
        self._confirm = confirm_seconds
        self._phase = _Phase("idle", 0.0)
        self._was_pressed = False

    @property
    def state(self) -> ButtonState:
        return self._phase.state

    def update(self, pressed: bool, now: float) -> ButtonEvent | None:
        """One sample of the button; returns the event this sample causes, if any."""
        pressed_edge = pressed and not self._was_pressed
        self._was_pressed = pressed
        phase = self._phase
        if phase.state == "idle":
            if pressed_edge:
                self._phase = _Phase("holding", now)
        elif phase.state == "holding":
            if not pressed:
                self._phase = _Phase("idle", now)  # a short press: nothing
            elif now - phase.since >= self._hold:
                self._phase = _Phase("requested", now)
                return "reset-requested"
        elif phase.state == "requested":
            if not pressed:
                self._phase = _Phase("awaiting-confirm", now)
        elif phase.state == "awaiting-confirm":
            if now - phase.since > self._confirm:
                self._phase = _Phase("idle", now)
                # A press after the window is too late to confirm; it starts a new hold.
                if pressed_edge:
                    self._phase = _Phase("holding", now)
                return "reset-expired"
            if pressed_edge:
                self._phase = _Phase("idle", now)
                return "reset-confirmed"
        return None
