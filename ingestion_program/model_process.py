"""Starts the submission's model in a fresh interpreter and talks to it: pixel batches out, checked answers back.

The child is `python -P -c BOOTSTRAP` in the submission's folder with a clean environment; it gets the source of
model_runner.py (and the modules it imports, CHILD_MODULES) over its request pipe, so nothing in its arguments, environment
or sys.path points at the ingestion program, the repository or the output folder (-P: nor at the submission's folder,
until model_runner.py has imported what it needs). Pixels travel through an anonymous shared-memory file (two slots,
so the next batch is copied while the model works on this one) sealed at its size. ModelProcess is the supervisor's
one owner of the protocol: it sends every request, and every answer goes through model_messages.py before anything
reads it.
"""
import fcntl
import json
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

import process_tree
from disk_watch import DiskWatch
from model_messages import (MAX_MESSAGE_BYTES, NOT_JSON, Answer, BatchDone, Fatal, Loaded, LoadFailed,
                            ProtocolError, read_message)
from output_capture import CappedLog
from stop_signals import signal_name

PROGRAM_DIR = Path(__file__).resolve().parent
# in import order; challenge_labels and requirements_check (vocabulary and package policy) are used on both sides
CHILD_MODULES = ("challenge_labels", "model_outputs", "requirements_check", "submission_loader", "model_runner")
# Signals the supervisor ignores (stop_signals.py) are inherited as ignored: back to their defaults first of all.
BOOTSTRAP = """\
import signal
for number in signal.valid_signals() - {signal.SIGPIPE, signal.SIGXFSZ}:
    if signal.getsignal(number) == signal.SIG_IGN:
        signal.signal(number, signal.SIG_DFL)
import json, sys, types
from multiprocessing.connection import Connection
requests = Connection(int(sys.argv[1]), writable=False)
for name, source in json.loads(requests.recv_bytes()).items():
    module = sys.modules[name] = types.ModuleType(name)
    module.__file__ = "<ingestion>/" + name + ".py"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
sys.modules["model_runner"].main(requests, sys.argv[2:])
"""
# Variables the model's process may see (values pointing at hidden folders are dropped), plus LC_*.
PASSED_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH",
                    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
                    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_HOME", "HF_HOME",
                    "XDG_CACHE_HOME")
SLOTS = 2
STOP_GRACE_SECONDS = 2.0
# How often a wait for an answer checks that the process is still there, collects its ended orphans and counts its
# threads: a fork or thread bomb is stopped within about this time.
WATCH_SECONDS = 0.05
SEALS = ("F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_SEAL")
# The length prefix that the runner's Connection.send_bytes writes before each answer: a signed big-endian 4-byte
# count (-1 would announce one over 2 GiB, far beyond MAX_MESSAGE_BYTES).
FRAME_LENGTH = struct.Struct("!i")


class ModelEnded(Exception):
    """The model's process ended or broke the protocol; the message names how (signal, exit code, bad answer)."""


class PixelSlots:
    """Anonymous shared memory holding SLOTS batches of raw RGB pixels (height x width x 3 uint8 each).

    The model's process holds a descriptor of it too. Sealed at its size (memfd seals: no shrinking, no growing, no
    further seals), a truncate from there fails instead of taking the supervisor's pages away (SIGBUS on its next
    write); without memfd (macOS) the model's copy is opened read-only, and the file has no name to reopen it by.
    """

    def __init__(self, slot_bytes: int):
        self.slot_bytes = slot_bytes
        size = slot_bytes * SLOTS
        if hasattr(os, "memfd_create") and all(hasattr(fcntl, seal) for seal in SEALS):
            self.fd = os.memfd_create("wbc-pixels", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(self.fd, size)
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, sum(getattr(fcntl, seal) for seal in SEALS))
            self.child_fd = os.dup(self.fd)
        else:
            fd, name = tempfile.mkstemp(prefix="wbc-pixels-")
            self.fd, self.child_fd = fd, os.open(name, os.O_RDONLY)
            os.unlink(name)
            os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)

    def write(self, slot: int, arrays: list[np.ndarray]) -> list[list[int]]:
        """Copy the arrays into the slot, one after another; their [height, width]."""
        offset = slot * self.slot_bytes
        for array in arrays:
            view = np.frombuffer(self.map, np.uint8, array.nbytes, offset)
            view[:] = array.reshape(-1)
            del view  # no buffer export may outlive the write, or the map cannot be closed
            offset += array.nbytes
        return [list(array.shape[:2]) for array in arrays]

    def close(self) -> None:
        self.map.close()
        for fd in (self.fd, self.child_fd):
            os.close(fd)


def child_environment(hidden: list[Path], temp_dir: Path, seed: int) -> dict[str, str]:
    """The passed variables, minus any path entry inside a hidden folder and any relative PYTHONPATH entry (in the
    model's working directory it would name the submission's folder, ahead of what the runner imports); the model's
    own TMPDIR and hash seed."""
    hidden = {form for folder in hidden for form in (Path(folder).absolute(), Path(folder).resolve())}

    def visible(entry: str) -> bool:
        if not entry:
            return False
        if not os.path.isabs(entry):
            return True
        forms = (Path(entry).absolute(), Path(entry).resolve())
        return not any(path == h or h in path.parents for path in forms for h in hidden)

    env = {}
    for name, value in os.environ.items():
        if name in PASSED_VARIABLES or name.startswith("LC_"):
            kept = [entry for entry in value.split(os.pathsep)
                    if visible(entry) and (name != "PYTHONPATH" or os.path.isabs(entry))]
            if kept:
                env[name] = os.pathsep.join(kept)
    env.update(PYTHONHASHSEED=str(seed), TMPDIR=str(temp_dir), PYTHONDONTWRITEBYTECODE="1")
    return env


class ModelProcess:
    """One model process: start, load, send batches, receive checked answers, stop (killing everything it started)."""

    def __init__(self, model_dir: Path, log: CappedLog, env: dict[str, str], slot_bytes: int,
                 max_threads: int | None = None, disk: DiskWatch | None = None):
        self.slots = PixelSlots(slot_bytes)
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        self.spared = frozenset(process_tree.descendants(os.getpid()))
        self.popen = subprocess.Popen(
            [sys.executable, "-P", "-c", BOOTSTRAP, str(requests_read), str(answers_write), str(self.slots.child_fd),
             str(slot_bytes)],
            cwd=model_dir, env=env, stdin=subprocess.DEVNULL, stdout=log.write_fd, stderr=subprocess.STDOUT,
            pass_fds=(requests_read, answers_write, self.slots.child_fd), start_new_session=True)
        for fd in (requests_read, answers_write):
            os.close(fd)
        log.close_writer()
        self._requests = Connection(requests_write, readable=False)
        self._answers = answers_read  # read piece by piece (_read_exactly), never blocking
        os.set_blocking(answers_read, False)
        self.fatal = None
        self._left_after_exit: int | None = None  # bytes of the answer channel still the model process's own
        self.memory_limit_mb = None  # from the load settings, for the out-of-memory reason
        self.max_threads = max_threads  # None or 0: no limit
        self.disk = disk  # None: no limit
        self._next_watch = 0.0
        self.stopped = False
        self._send({name: (PROGRAM_DIR / f"{name}.py").read_text(encoding="utf-8") for name in CHILD_MODULES})

    def load(self, settings: dict) -> Loaded | LoadFailed:
        """Import model.py and build the Model in the child; what it answered."""
        self.memory_limit_mb = settings["memory_limit_mb"]
        self._send({"load": settings})
        return self._receive(("loaded", "failed"))

    def predict(self, slot: int, pixels: list[np.ndarray]) -> None:
        """Copy a batch into a shared-memory slot and ask for its answers (collected later with answers())."""
        self._send({"predict": {"slot": slot, "shapes": self.slots.write(slot, pixels)}})

    def answers(self, images: int, on_answer: Callable[[Answer], None]) -> BatchDone:
        """Hand each checked answer to the oldest pending batch of `images` images to on_answer as it arrives (an image
        answered before the process died is kept); returns the batch's closing message."""
        answered = set()
        while True:
            message = self._receive(("items", "done"), images)
            if isinstance(message, BatchDone):
                return message
            for answer in message:
                if answer.index in answered:
                    raise self._broken(ProtocolError(f"a second answer for image {answer.index} of the batch"))
                answered.add(answer.index)
                on_answer(answer)

    def _send(self, message: dict) -> None:
        try:
            self._requests.send_bytes(json.dumps(message).encode())
        except (BrokenPipeError, OSError):
            raise ModelEnded(self.ending()) from None

    def _receive(self, expected: tuple[str, ...], images: int = 0):
        """The next message, checked (model_messages.read_message); ModelEnded when the process is gone or sends
        anything the protocol does not allow."""
        (length,) = FRAME_LENGTH.unpack(self._read_exactly(FRAME_LENGTH.size))
        if not 0 <= length <= MAX_MESSAGE_BYTES:  # bytes no runner sends (the channel is then unusable)
            raise self._broken(ProtocolError(NOT_JSON))
        raw = self._read_exactly(length)
        try:
            message = read_message(raw, expected, images)
        except ProtocolError as error:
            raise self._broken(error) from None
        if isinstance(message, Fatal):
            self.fatal = self._fatal_reason(message.message)
            raise ModelEnded(self.fatal)
        return message

    def _read_exactly(self, size: int) -> bytes:
        """`size` bytes of the answer channel as they arrive; ModelEnded at its end, or once the model's process has
        exited and what it wrote before is read. A process it started may hold the channel open and go on writing,
        so neither the channel's end nor its silence says the model is gone, even midway through a message: without
        this, a crash would be reported as the time budget running out."""
        data = bytearray()
        while len(data) < size:
            self._watch()
            if self._left_after_exit is None and self.popen.poll() is not None:
                # written before the exit, so in the pipe now; anything after is not the model's process
                self._left_after_exit = int.from_bytes(fcntl.ioctl(self._answers, termios.FIONREAD, bytes(4)),
                                                       sys.byteorder)
            if self._left_after_exit == 0:
                raise ModelEnded(self.ending())
            if not wait([self._answers], WATCH_SECONDS):
                continue
            wanted = size - len(data) if self._left_after_exit is None else min(size - len(data), self._left_after_exit)
            try:
                chunk = os.read(self._answers, wanted)
            except BlockingIOError:
                continue
            if not chunk:
                raise ModelEnded(self.ending())
            data += chunk
            if self._left_after_exit is not None:
                self._left_after_exit -= len(chunk)
        return bytes(data)

    def _watch(self) -> None:
        """At most every WATCH_SECONDS, guard what the submission shares with every job on the machine (the platform
        sets no limit on either): collect the ended processes re-parented to the supervisor, so that a process
        forking and exiting in a loop leaves no zombies; and stop a flood, killing every process of the submission
        (ModelEnded says why) past max_threads, all its processes' threads together (where the supervisor is PID 1),
        before they fill the machine's pid table, or once it has taken more disk than the DiskWatch allows."""
        now = time.monotonic()
        if now < self._next_watch:
            return
        self._next_watch = now + WATCH_SECONDS
        process_tree.reap_orphans(keep=self.popen.pid)
        counted = process_tree.namespace_threads(exclude=self.spared) if self.max_threads else None
        if counted is not None and counted[0] > self.max_threads:
            threads, processes = counted
            self.fatal = (f"the submission ran {threads:,} threads at once (in {processes:,} processes), more than "
                          f"the {self.max_threads:,} allowed (WBC_MAX_THREADS); all of them were killed")
        elif self.disk and (overuse := self.disk.overuse()):
            self.fatal = f"{overuse}; every process of the submission was killed"
        else:
            return
        self.kill()
        raise ModelEnded(self.fatal)

    def _fatal_reason(self, text: str) -> str:
        """The reason for the runner's last message, worded here: what the process sent stays in its own words."""
        if text == "MemoryError":
            limit = (f"the memory limit is {self.memory_limit_mb} MB (WBC_MEMORY_LIMIT_MB)" if self.memory_limit_mb
                     else "no memory limit was set")
            return f"the submission ran out of memory (MemoryError; {limit})"
        return (f"the ingestion's runner could not go on with what the submission's code did; its process said: "
                f'"{text}"')

    @staticmethod
    def _broken(error: ProtocolError) -> ModelEnded:
        if str(error) == NOT_JSON:
            return ModelEnded("the submission's process sent back an answer that is not the ingestion's JSON "
                              "(something in the process wrote to its answer channel)")
        return ModelEnded(f"the submission's process sent back a message the ingestion's protocol does not allow: "
                          f"{error} (something in the process wrote to its answer channel)")

    def ending(self) -> str:
        """How the process ended, in words: its exit code or the signal that killed it."""
        if self.fatal:
            return self.fatal
        try:
            code = self.popen.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            return "the submission's process closed its answer channel (it is still running; it was killed)"
        if code < 0:
            name = signal_name(-code)
            hint = {"SIGKILL": " (the system's out-of-memory killer, or another process)",
                    "SIGSEGV": " (a crash in native code)", "SIGABRT": " (an abort in native code)"}.get(name, "")
            return f"the submission's process was killed by {name}{hint}"
        return (f"the submission's process exited with code {code} (os._exit, or sys.exit outside load/predict)"
                if code else "the submission's process exited early (exit code 0)")

    def kill(self) -> int:
        """Freeze and kill the process and every process it started, however detached (process_tree.py); returns how
        many others were killed."""
        killed = process_tree.kill_descendants(self.spared, unreaped=frozenset({self.popen.pid}))
        self.popen.wait()
        return len(killed - {self.popen.pid})

    def stop(self) -> int:
        """Ask the process to exit (it flushes what the model printed), then kill whatever is left; close the pipes
        and the shared memory. Returns how many leftover processes were killed."""
        if self.stopped:
            return 0
        self.stopped = True
        # Never blocking: a model that stopped reading and filled the request channel gets killed, not waited for.
        os.set_blocking(self._requests.fileno(), False)
        try:
            self._requests.send_bytes(b'{"stop": true}')  # smaller than PIPE_BUF: written whole or not at all
            self.popen.wait(STOP_GRACE_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass
        leftovers = self.kill()
        if self.disk:
            self.disk.close()
        self._requests.close()
        os.close(self._answers)
        self.slots.close()
        return leftovers
