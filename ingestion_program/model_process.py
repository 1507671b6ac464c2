"""Starts the submission's model in a fresh interpreter and talks to it: pixel batches out, answers back.

The child is `python -c BOOTSTRAP` in the submission's folder with a clean environment; it gets the source of
model_runner.py (and the modules it imports, CHILD_MODULES) over its request pipe, so nothing in its arguments, environment
or sys.path points at the ingestion program, the repository or the output folder. Pixels travel through an
anonymous shared-memory file (two slots, so the next batch is copied while the model works on this one).
"""
import json
import mmap
import os
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

import process_tree
from output_capture import CappedLog

PROGRAM_DIR = Path(__file__).resolve().parent
# in import order
CHILD_MODULES = ("challenge_labels", "model_outputs", "requirements_check", "submission_loader", "model_runner")
BOOTSTRAP = """\
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
MAX_ANSWER_BYTES = 16 * 2**20
STOP_GRACE_SECONDS = 2.0


class ModelEnded(Exception):
    """The model's process ended or broke the protocol; the message names how (signal, exit code, bad answer)."""


class PixelSlots:
    """Anonymous shared memory holding SLOTS batches of raw RGB pixels (height x width x 3 uint8 each)."""

    def __init__(self, slot_bytes: int):
        self.slot_bytes = slot_bytes
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("wbc-pixels")
        else:  # no memfd (macOS): an unlinked temporary file
            self._file = tempfile.TemporaryFile()
            self.fd = os.dup(self._file.fileno())
        os.ftruncate(self.fd, slot_bytes * SLOTS)
        self.map = mmap.mmap(self.fd, slot_bytes * SLOTS)

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
        os.close(self.fd)


def child_environment(hidden: list[Path], temp_dir: Path, seed: int) -> dict[str, str]:
    """The passed variables, minus any path entry inside a hidden folder; the model's own TMPDIR and hash seed."""
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
            kept = [entry for entry in value.split(os.pathsep) if visible(entry)]
            if kept:
                env[name] = os.pathsep.join(kept)
    env.update(PYTHONHASHSEED=str(seed), TMPDIR=str(temp_dir), PYTHONDONTWRITEBYTECODE="1")
    return env


class ModelProcess:
    """One model process: start, load, send batches, receive answers, stop (killing everything it started)."""

    def __init__(self, model_dir: Path, log: CappedLog, env: dict[str, str], slot_bytes: int):
        self.slots = PixelSlots(slot_bytes)
        requests_read, requests_write = os.pipe()
        answers_read, answers_write = os.pipe()
        self.spared = frozenset(process_tree.descendants(os.getpid()))
        self.log = log
        self.popen = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP, str(requests_read), str(answers_write), str(self.slots.fd),
             str(slot_bytes)],
            cwd=model_dir, env=env, stdin=subprocess.DEVNULL, stdout=log.write_fd, stderr=subprocess.STDOUT,
            pass_fds=(requests_read, answers_write, self.slots.fd), start_new_session=True)
        for fd in (requests_read, answers_write):
            os.close(fd)
        log.close_writer()
        self.requests = Connection(requests_write, readable=False)
        self.answers = Connection(answers_read, writable=False)
        self.fatal = None
        self.stopped = False
        self.send({name: (PROGRAM_DIR / f"{name}.py").read_text(encoding="utf-8") for name in CHILD_MODULES})

    def send(self, message: dict) -> None:
        try:
            self.requests.send_bytes(json.dumps(message).encode())
        except (BrokenPipeError, OSError):
            raise ModelEnded(self.ending()) from None

    def receive(self) -> dict:
        """The next answer; ModelEnded when the process is gone or sends something that is not an answer."""
        try:
            message = json.loads(self.answers.recv_bytes(MAX_ANSWER_BYTES))
        except EOFError:
            raise ModelEnded(self.ending()) from None
        except (OSError, ValueError):  # OSError: a length header no answer has (the channel is then closed)
            raise ModelEnded("the submission's process sent back an answer that is not the ingestion's JSON "
                             "(something in the process wrote to its answer channel)") from None
        if not isinstance(message, dict):
            raise ModelEnded("the submission's process sent back an answer of the wrong shape")
        if "fatal" in message:
            self.fatal = str(message["fatal"])
            raise ModelEnded(self.fatal)
        return message

    def ending(self) -> str:
        """How the process ended, in words: its exit code or the signal that killed it."""
        if self.fatal:
            return self.fatal
        try:
            code = self.popen.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            return "the submission's process closed its answer channel (it is still running; it was killed)"
        if code < 0:
            name = signal.Signals(-code).name
            hint = {"SIGKILL": " (the system's out-of-memory killer, or another process)",
                    "SIGSEGV": " (a crash in native code)", "SIGABRT": " (an abort in native code)"}.get(name, "")
            return f"the submission's process was killed by {name}{hint}"
        return (f"the submission's process exited with code {code} (os._exit, or sys.exit outside load/predict)"
                if code else "the submission's process exited early (exit code 0)")

    def kill(self) -> int:
        """Kill the process group and every descendant, however detached; returns how many others were killed."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()
        return process_tree.kill_all_descendants(spare=self.spared)

    def stop(self) -> int:
        """Ask the process to exit (it flushes what the model printed), then kill whatever is left; close the pipes
        and the shared memory. Returns how many leftover processes were killed."""
        if self.stopped:
            return 0
        self.stopped = True
        try:
            self.requests.send_bytes(b'{"stop": true}')
            self.popen.wait(STOP_GRACE_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass
        leftovers = self.kill()
        self.requests.close()
        self.answers.close()
        self.slots.close()
        return leftovers
