"""A watchdog thread that ends the run when its time budget is spent, even if the model hangs."""
import os
import threading
import time


class TimeBudget:
    """Calls `on_expiry()` once the budget runs out, then ends the process with `exit_code`.

    `on_expiry` writes what the run has so far; it returns False when the run already finished on its
    own, and then the watchdog leaves the exit to the main thread. Budget None or <= 0: no watchdog.
    """

    def __init__(self, seconds, on_expiry, exit_code=1, started=None):
        self.seconds = seconds if seconds and seconds > 0 else None
        self.started = time.monotonic() if started is None else started
        self._on_expiry = on_expiry
        self._exit_code = exit_code
        self._done = threading.Event()
        self._thread = None

    def start(self):
        if self.seconds is not None:
            self._thread = threading.Thread(target=self._watch, name="time-budget", daemon=True)
            self._thread.start()
        return self

    def remaining(self):
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (time.monotonic() - self.started))

    def cancel(self):
        self._done.set()

    def _watch(self):
        if self._done.wait(self.remaining()):
            return
        if self._on_expiry():
            os._exit(self._exit_code)  # the model may be stuck in C code or in non-daemon threads
