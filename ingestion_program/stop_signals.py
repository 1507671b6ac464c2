"""Turns every signal the supervisor can catch into a named stop of the run, so that no signal ends it without a report.

The model runs as the same user and can signal its supervisor. A signal whose default would end or freeze this
process calls on_signal(its number) instead, and the run then fails with a reason naming it. Left as they are: SIGKILL
and SIGSTOP (they cannot be caught: in the competition container, and locally where pid_namespace.py can run, the
supervisor is PID 1 and the kernel drops them when they come from inside), the signals ignored by default, and
SIGPIPE and SIGXFSZ (Python ignores them). A fault signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE) and the terminal's stop
signals are ignored instead: sent by another process they do nothing, while a real fault of this process is still
delivered with its default action (the kernel overrides an ignored fault). The model's process starts by restoring
the defaults of whatever it inherited as ignored (model_process.py's BOOTSTRAP).
"""
import signal
from collections.abc import Callable

UNCAUGHT = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH,
            signal.SIGPIPE, signal.SIGXFSZ}
IGNORED = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTSTP, signal.SIGTTIN,
           signal.SIGTTOU}


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal between SIGRTMIN and SIGRTMAX
        return f"signal {number}"


def install(on_signal: Callable[[int], None]) -> dict:
    """From now on, every catchable signal but UNCAUGHT and IGNORED calls on_signal(number) in the main thread.
    Returns the handlers it replaced (for restore); nothing is installed outside the main thread."""
    previous = {}
    for number in signal.valid_signals():
        if number in UNCAUGHT:
            continue
        handler = signal.SIG_IGN if number in IGNORED else (lambda received, _: on_signal(received))
        try:
            previous[number] = signal.signal(number, handler)
        except (OSError, ValueError):  # reserved by the C library here, or not the main thread
            pass
    return previous


def restore(previous: dict) -> None:
    """Put back the handlers install() replaced (an in-process run must leave its caller's as they were)."""
    for number, handler in previous.items():
        signal.signal(number, handler if handler is not None else signal.SIG_DFL)
