"""The run's time budget, enforced from outside the model: a watchdog thread stops the model's processes on expiry,
or at once when the supervisor is told to stop (stop_signals.py)."""
import os
import select
import threading
import time
from typing import Callable


class BudgetExceeded(Exception):
    """The time budget ran out; the run writes what it has and fails."""


class Interrupted(Exception):
    """The supervisor was sent a signal (the message names it); the run writes what it has and fails."""


class TimeBudget:
    """Calls `on_expiry()` (which kills the model's processes) once the budget runs out, or as soon as stop() is
    called.

    The supervisor never runs submission code, so this thread always gets to run; blocking reads of the model's
    answers end when its processes are killed, and the main thread then raises BudgetExceeded or Interrupted.
    A supervisor frozen past its budget (SIGSTOP) is caught by the same clock once it runs again: check() at the end
    of predicting fails the run whatever the watchdog managed. Budget None or <= 0: no limit.
    """

    def __init__(self, seconds: float | None, on_expiry: Callable[[], None], started: float | None = None):
        self.seconds = seconds if seconds and seconds > 0 else None
        self.started = time.monotonic() if started is None else started
        self.stopped_by: str | None = None  # the signal that stopped the run, in words
        self._on_expiry = on_expiry
        # stop() runs in a signal handler, which may interrupt the main thread anywhere, even inside a lock it
        # holds: it wakes the watchdog by writing to a pipe, which takes no lock.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)  # a model sending signals by the thousand must not block it
        self._cancelled = False

    def start(self) -> "TimeBudget":
        threading.Thread(target=self._watch, name="time-budget", daemon=True).start()
        return self

    def remaining(self) -> float | None:
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    @property
    def expired(self) -> bool:
        return self.remaining() == 0.0

    def stop(self, reason: str) -> None:
        """Stop the run now (called from a signal handler: it only records the reason and wakes the watchdog)."""
        if self.stopped_by is None:
            self.stopped_by = reason
        self._wake()

    def check(self) -> None:
        """Raise Interrupted or BudgetExceeded once the run must end (called between steps and after predicting)."""
        if self.stopped_by is not None:
            raise Interrupted(self.stopped_by)
        if self.expired:
            raise BudgetExceeded()

    def cancel(self) -> None:
        self._cancelled = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:  # the pipe is full: the watchdog has long been woken
            pass

    def _watch(self) -> None:
        select.select([self._wake_read], [], [], self.remaining())
        if not self._cancelled:
            self._on_expiry()
