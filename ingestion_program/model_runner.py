"""The child side of ingestion: loads the submission's Model and answers pixel batches with checked predictions.

It runs in a fresh interpreter started by model_process.py, in the submission's folder, and knows nothing but
its pipes: requests (pixels in shared memory, no image ids, no paths) come in on one, answers go out on the other
as JSON (never pickle: the supervisor must not unpickle what a submission controls). Everything here is also
within the submission's reach, so the supervisor checks every answer again (model_messages.py); these checks only
give the participant precise messages. Messages (all JSON objects):
  in:  {"load": {...}} once, then {"predict": {"slot", "shapes"}} per batch, then {"stop": true}
  out: {"loaded": {...}} or {"failed": {"error", "traceback"}}; per batch one or more
       {"items": [[index, label, probs, error]]} then {"done": {"warnings": [...], "fallbacks": n}};
       {"fatal": "MemoryError"} before an out-of-memory exit, {"fatal": <what the runner tripped on>} before any
       other (the supervisor words the reason, so that nothing this process sends reads as its own words).
Every module this process needs is imported before the submission's folder goes on sys.path (at load), so a
submission's own random.py or json.py shadows nothing of it.
"""
import ctypes
import gc
import json
import mmap
import os
import random
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import ModuleType

import numpy as np
from PIL import Image

from model_outputs import PredictionError, checked_answer
from submission_loader import LoadError, build_model, describe_exception, import_model_module

try:
    import resource
except ImportError:  # not POSIX: no memory limit
    resource = None

EXIT_OUT_OF_MEMORY = 3
EXIT_RUNNER_FAILED = 4
# Docker's default capabilities of a container (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
# NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP: CapEff a80425fb): the most this process keeps,
# so that a run started as root gives the model no more than CodaBench's container does (no mount, no ptrace).
CONTAINER_CAPABILITIES = 0xA80425FB
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
CAPABILITY_VERSION_3 = 0x20080522


class Runner:
    """The loaded model, its answer channel and the shared pixel slots."""

    def __init__(self, requests: Connection, answers: Connection, pixels: mmap.mmap, slot_bytes: int):
        self.requests, self.answers, self.pixels, self.slot_bytes = requests, answers, pixels, slot_bytes
        self.model = None
        self.text_cap = None  # characters of any text sent; the supervisor's load settings give it
        self.setup_warnings: list[str] = []  # said with the load's answer

    def send(self, message: dict) -> None:
        self.answers.send_bytes(json.dumps(message).encode())

    def cut(self, text: str | None) -> str | None:
        """A text no longer than the protocol carries (the supervisor cleans and caps it again)."""
        return text if text is None or self.text_cap is None else text[:self.text_cap]

    def load(self, settings: dict) -> None:
        """Apply the memory cap, put the submission's folder on sys.path, import model.py, build and load the Model;
        answer loaded or failed."""
        self.text_cap = settings["text_cap"]
        if settings["memory_limit_mb"] and resource is not None:
            limit = int(settings["memory_limit_mb"]) * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # hard limit too: the model cannot raise it
        seed_everything(settings["seed"])
        sys.path.insert(0, os.path.dirname(settings["model_path"]))  # only now: see the module's docstring
        try:
            module = import_model_module(settings["model_path"], settings["requirements"])
            seed_everything(settings["seed"])
            self.model, warnings = build_model(module)
        except LoadError as exc:
            self.send({"failed": {"error": self.cut(str(exc)), "traceback": self.cut(exc.traceback)}})
            return
        seed_everything(settings["seed"])  # again, in case load() imported torch
        batched = callable(getattr(self.model, "predict_batch", None))
        version = getattr(torch_module(), "__version__", None)
        self.send({"loaded": {"mode": "predict_batch" if batched else "predict",
                              "warnings": [self.cut(w) for w in self.setup_warnings + warnings], "device": device(),
                              "torch_version": None if version is None else str(version)}})

    def images(self, request: dict) -> list:
        """PIL RGB images copied out of the request's shared-memory slot."""
        offset, images = request["slot"] * self.slot_bytes, []
        for height, width in request["shapes"]:
            size = height * width * 3
            pixels = np.frombuffer(self.pixels, np.uint8, size, offset).reshape(height, width, 3)
            images.append(Image.fromarray(pixels.copy(), "RGB"))
            offset += size
        return images

    def predict(self, request: dict) -> None:
        batch = Batch(self)
        images = self.images(request)
        if callable(getattr(self.model, "predict_batch", None)):
            batch.with_batches(self.model, images)
        else:
            batch.each(self.model.predict, list(enumerate(images)))
        batch.flush()
        self.send({"done": {"warnings": [self.cut(w) for w in batch.warnings], "fallbacks": batch.fallbacks}})


class Batch:
    """One request's answers: sent image by image on the predict path, so a hang later loses none of them."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.items, self.warnings, self.fallbacks = [], [], 0

    def record(self, index: int, label: str | None = None, probs: list | None = None, error: str | None = None
               ) -> None:
        self.items.append([index, label, None if probs is None else probs.tolist(), self.runner.cut(error)])

    def flush(self) -> None:
        if self.items:
            self.runner.send({"items": self.items})
            self.items = []

    def each(self, predict: Callable, indexed: list[tuple[int, object]]) -> None:
        """The per-image path: predict, check, answer; an exception or junk output costs only that image."""
        for index, image in indexed:
            try:
                output = predict(image)
            except MemoryError:
                raise
            except BaseException as exc:  # KeyboardInterrupt and SystemExit too: one image's error
                self.record(index, error=f"predict raised {describe_exception(exc)}")
            else:
                self.check(index, output, "predict")
            self.flush()

    def check(self, index: int, output: object, source: str) -> None:
        """A valid output becomes an answer; junk, or an output that raises while read, an error naming its source."""
        try:
            label, probs = checked_answer(output)
        except PredictionError as exc:
            self.record(index, error=f"{source} returned {exc}")
        except MemoryError:
            raise
        except BaseException as exc:
            self.record(index, error=f"{source} returned a {type(output).__name__} that raised "
                                     f"{describe_exception(exc)} when read")
        else:
            self.record(index, label, probs)

    def with_batches(self, model: object, images: list) -> None:
        """predict_batch on the batch; when it raises, or its result cannot be read or has the wrong length,
        redo the batch with predict."""
        outputs, problem = batch_outputs(model, images)
        if problem is None:
            for index, output in enumerate(outputs):
                self.check(index, output, "predict_batch")
            return
        self.fallbacks += 1
        if callable(getattr(model, "predict", None)):
            self.warnings.append(f"{problem}; that batch was predicted image by image with predict")
            self.each(model.predict, list(enumerate(images)))
        else:
            for index in range(len(images)):
                self.record(index, error=f"{problem} (and Model has no predict to fall back on)")


def batch_outputs(model: object, images: list) -> tuple[list | None, str | None]:
    """(outputs, None) or (None, what went wrong) for one predict_batch call."""
    try:
        outputs = model.predict_batch(images)
    except MemoryError:
        raise
    except BaseException as exc:
        return None, f"predict_batch raised {describe_exception(exc)}"
    try:
        outputs = list(outputs)
    except TypeError:
        return None, f"predict_batch returned a {type(outputs).__name__}, not a list"
    except MemoryError:
        raise
    except BaseException as exc:  # a generator that raises part way
        return None, f"predict_batch returned a {type(outputs).__name__} that raised {describe_exception(exc)}"
    if len(outputs) != len(images):
        return None, f"predict_batch returned {len(outputs)} predictions for {len(images)} images"
    return outputs, None


def torch_module() -> ModuleType | None:
    """torch if the submission imported it: a model without torch never pays its import time."""
    return sys.modules.get("torch")


def device() -> str:
    """'cuda:<name>' when the submission uses torch and a GPU is visible, else 'cpu'."""
    torch = torch_module()
    try:
        if torch is not None and torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
    except Exception:  # a broken CUDA set-up is reported as CPU, it must not fail the run
        pass
    return "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when the submission uses it) torch, so reruns give identical predictions."""
    random.seed(seed)
    np.random.seed(seed)
    torch = torch_module()
    if torch is not None:
        torch.manual_seed(seed)  # seeds every CUDA device too


def serve(runner: Runner) -> None:
    """Answer requests until told to stop or the supervisor goes away."""
    while True:
        try:
            request = json.loads(runner.requests.recv_bytes())
        except (EOFError, OSError):
            return
        if "load" in request:
            runner.load(request["load"])
        elif "predict" in request:
            runner.predict(request["predict"])
        else:
            return


def main(requests: Connection, argv: list[str]) -> None:
    """requests: the request pipe (the bootstrap read this module from it); argv: answer fd, shared-memory fd,
    slot size in bytes."""
    answers_fd, pixels_fd, slot_bytes = (int(value) for value in argv)
    _die_with_supervisor()
    pixels = mmap.mmap(pixels_fd, 0, prot=mmap.PROT_READ)
    runner = Runner(requests, Connection(answers_fd, readable=False), pixels, slot_bytes)
    kept = _keep_container_capabilities()
    if kept:
        runner.setup_warnings.append(f"the submission's process kept capabilities a container would not have "
                                     f"(CapEff {kept}): run untrusted submissions in the competition's image")
    try:
        serve(runner)
    except MemoryError:
        runner.model = None
        gc.collect()
        try:
            runner.send({"fatal": "MemoryError"})
        finally:
            _flush_and_exit(EXIT_OUT_OF_MEMORY)
    except BaseException as exc:  # something the submission handed back raised where the runner read it
        try:
            runner.send({"fatal": describe_exception(exc)})
        finally:
            _flush_and_exit(EXIT_RUNNER_FAILED)
    _flush_and_exit(0)


def _die_with_supervisor() -> None:
    """Linux: SIGKILL this process if the supervisor dies first (killed by the platform's own time limit)."""
    try:
        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def _keep_container_capabilities() -> str | None:
    """Linux: give up every capability a docker container lacks, for good (bounding set, ambient set, no new
    privileges on exec), before the submission's code runs. None when none is left; else the CapEff still held."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last = int(handle.read())
        for capability in range(last + 1):
            if not CONTAINER_CAPABILITIES >> capability & 1:
                libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)  # fails without CAP_SETPCAP: then nothing to drop
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        header, data = Header(CAPABILITY_VERSION_3, 0), (Data * 2)()
        if libc.capget(ctypes.byref(header), data) == 0:
            for word, allowed in zip(data, (CONTAINER_CAPABILITIES, 0)):  # capabilities 0-31, then 32-63
                word.effective &= allowed
                word.permitted &= allowed
                word.inheritable &= allowed
            libc.capset(ctypes.byref(header), data)
        with open("/proc/self/status") as handle:
            held = next(int(line.split()[1], 16) for line in handle if line.startswith("CapEff:"))
    except (OSError, AttributeError, StopIteration, ValueError):  # not Linux: no capabilities
        return None
    return None if held & ~CONTAINER_CAPABILITIES == 0 else f"{held:016x}"


def _flush_and_exit(code: int) -> None:
    """Flush what the model printed, then exit without waiting for threads the model may have left running."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # the submission may have closed or replaced them
            pass
    os._exit(code)
