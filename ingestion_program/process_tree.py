"""Finds every process a submission started, including the ones that left its session, and kills them (Linux /proc).

As PID 1 of its namespace (the competition container; locally pid_namespace.py) the supervisor kills them all with
one kill(-1), which nothing outruns. Elsewhere, freeze then kill: every process found is stopped (SIGSTOP) and the
tree scanned again until a scan finds none still running, then all are killed. A stopped process cannot fork, and
its process group is stopped with it, so a process forking in a loop is caught; one whose every child also leaves
the group (setsid) and its parent faster than a scan of /proc can stay ahead: only PID 1's kill(-1) is sure of it.
"""
import ctypes
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
FREEZE_SECONDS = 5.0  # a process in uninterruptible sleep stops only when it wakes: past this it is killed as it is
STOPPED_STATES = ("T", "t", "Z", "X")  # stopped, traced, zombie, dead: none of them can start a process


class ProcessState(NamedTuple):
    """What /proc/<pid>/stat says of a process that the sweeps and the watch need."""
    parent: int
    state: str  # the state letter (R, S, D, T, Z, ...)
    group: int  # process group
    threads: int  # a zombie: 1


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def guard_supervisor() -> bool:
    """Make this process the reaper of its orphaned descendants (a double-forked or setsid process stays ours to
    find) and not dumpable (a same-user process cannot open its /proc/<pid>/fd, mem or environ).
    Returns whether both took effect."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1) & _prctl(PR_SET_DUMPABLE, 0)


def reap_orphans(keep: int) -> None:
    """Collect the exit status of every ended process that was re-parented to this one (its reaper: guard_supervisor,
    or PID 1), but `keep`'s (the child whose status its Popen collects). Unreaped, each would stay a zombie holding its
    pid until the run ends, and a process that forks and exits in a loop fills the machine's pid table (32,768 on
    many) in seconds: no process of the machine could start another."""
    if not hasattr(os, "waitid"):  # not Linux
        return
    while True:
        try:
            ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)  # looks, leaves it to collect
        except ChildProcessError:  # no child at all
            return
        if ended is None or ended.si_pid == keep:  # none ended; or the model's own process, which ends the run
            return
        try:
            os.waitpid(ended.si_pid, os.WNOHANG)
        except ChildProcessError:
            return


def namespace_threads(exclude: frozenset[int]) -> tuple[int, int] | None:
    """(threads, processes) of this PID namespace but this process and `exclude`, when this process is its PID 1 (its
    /proc lists those processes and only those); None elsewhere, where /proc lists the machine's. Each thread, like
    each process, holds an id of the machine's one pid table."""
    if os.getpid() != 1:
        return None
    counted = [process.threads for pid, process in process_states().items() if pid != 1 and pid not in exclude]
    return sum(counted), len(counted)


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...] (starttime is index 19); OSError once gone.

    The command name may hold spaces and parentheses, so the fields start after its last ')'.
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def kill_group(process_group: int) -> None:
    """SIGKILL a process group; one that is already gone, or not ours, is no error."""
    try:
        os.killpg(process_group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def process_states() -> dict[int, ProcessState]:
    """{pid: ProcessState} of every process in /proc (empty where /proc is absent)."""
    states = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_fields(int(stat.parent.name))
        except (OSError, IndexError):  # the process ended meanwhile
            continue
        states[int(stat.parent.name)] = ProcessState(int(fields[1]), fields[0], int(fields[2]), int(fields[17]))
    return states


def descendants(root: int, states: dict[int, ProcessState] | None = None) -> list[int]:
    """Process ids below `root` in the process tree."""
    children: dict[int, list[int]] = {}
    for pid, process in (process_states() if states is None else states).items():
        children.setdefault(process.parent, []).append(pid)
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += children.get(pid, [])
    return found


def freeze_and_kill(find: Callable[[dict[int, ProcessState]], list[int]],
                    unreaped: frozenset[int] = frozenset()) -> set[int]:
    """Stop every process find(process_states()) names until a scan finds none of them still running, then SIGKILL
    them all and reap the ones that are this process's children (but `unreaped`: a child whose exit status its Popen
    collects). Returns the pids killed (zombies found on the way are reaped, not counted).

    Each is stopped with its whole process group too (not this process's own): the kernel signals a group at once,
    a child being forked into it included, so a process forking in a loop within its group is caught in one round.
    """
    frozen, zombies, groups = set(), set(), set()
    deadline = time.monotonic() + FREEZE_SECONDS
    while True:
        states = process_states()
        found = [pid for pid in find(states) if pid in states]
        running = [pid for pid in found if states[pid].state not in STOPPED_STATES]
        zombies.update(pid for pid in found if states[pid].state in ("Z", "X"))
        frozen.update(pid for pid in found if pid not in zombies)
        groups.update(states[pid].group for pid in found if states[pid].group > 0 and states[pid].group != os.getpgrp())
        if not running or time.monotonic() > deadline:
            break
        for pid in running:
            _signal(pid, signal.SIGSTOP)
        for group in groups:
            _signal(-group, signal.SIGSTOP)
        time.sleep(0.001)  # let the stops land before the next scan
    for group in groups:
        _signal(-group, signal.SIGKILL)
    for pid in frozen:
        _signal(pid, signal.SIGKILL)
    _reap((frozen | zombies) - unreaped)
    return frozen


def kill_descendants(spare: frozenset[int] = frozenset(), unreaped: frozenset[int] = frozenset()) -> set[int]:
    """Kill every descendant of this process but `spare` (the ones there before the submission started) and reap
    them (but `unreaped`); returns the pids killed.

    This process reaps its orphaned descendants (guard_supervisor), so whatever the submission started is below it
    however it detached. As PID 1 (of the competition container; locally of its own namespace, pid_namespace.py) it
    sends one kill(-1, SIGKILL): the kernel delivers it to every other process of the namespace at once, a process
    forking meanwhile and its child included, so not even one that takes a new pid every few microseconds outruns
    it. That is safe there: every other process of the namespace belongs to the prediction step (the worker's second
    container, when there is one, is another namespace), and the step's end would kill them all anyway, only later
    than the outputs are written. Anywhere else, freeze_and_kill.
    """
    if os.getpid() != 1 or spare:
        return freeze_and_kill(lambda states: [pid for pid in descendants(os.getpid(), states) if pid not in spare],
                               unreaped)
    states = process_states()
    found = {pid for pid in descendants(1, states) if pid not in spare}
    _signal(-1, signal.SIGKILL)
    _reap(set(process_states()) - {1} - unreaped)  # all the others, those forked since the listing too: all dying
    return {pid for pid in found if states[pid].state not in ("Z", "X")}


def _signal(pid: int, number: int) -> None:
    """os.kill, where a process already gone (or not ours) is no error."""
    try:
        os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pids: set[int]) -> None:
    """Collect the exit status of the killed processes that became this process's children (it is their reaper).

    A killed process whose parent was killed too is not yet this process's child while that parent is still dying:
    it is waited for until it is handed over (or gone), not taken for another's and left a zombie."""
    deadline = time.monotonic() + FREEZE_SECONDS
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    waiting.discard(pid)
            except ChildProcessError:  # not (yet) our child: gone, or about to be re-parented to this process
                if not os.path.exists(f"/proc/{pid}"):
                    waiting.discard(pid)
        if waiting:
            time.sleep(0.001)
