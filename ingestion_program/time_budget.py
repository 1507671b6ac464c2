"""The run's time budget, enforced from outside the model: a watchdog thread kills the model's processes on expiry."""
import threading
import time
from typing import Callable


class BudgetExceeded(Exception):
    """The time budget ran out; the run writes what it has and fails."""


class TimeBudget:
    """Calls `on_expiry()` (which kills the model's processes) once the budget runs out.

    The supervisor never runs submission code, so this thread always gets to run; blocking reads of the model's
    answers end when its processes are killed, and the main thread then raises BudgetExceeded.
    Budget None or <= 0: no limit.
    """

    def __init__(self, seconds: float | None, on_expiry: Callable[[], None], started: float | None = None):
        self.seconds = seconds if seconds and seconds > 0 else None
        self.started = time.monotonic() if started is None else started
        self._on_expiry = on_expiry
        self._done = threading.Event()
        self._expired = threading.Event()
        self._thread = None

    def start(self) -> "TimeBudget":
        if self.seconds is not None:
            self._thread = threading.Thread(target=self._watch, name="time-budget", daemon=True)
            self._thread.start()
        return self

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    @property
    def expired(self) -> bool:
        return self._expired.is_set() or self.remaining() == 0.0

    def check(self) -> None:
        """Raise BudgetExceeded once the budget is spent (called between steps)."""
        if self.expired:
            raise BudgetExceeded()

    def cancel(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self.remaining()):
            return
        self._expired.set()
        self._on_expiry()
