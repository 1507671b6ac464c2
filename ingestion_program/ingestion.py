"""Runs a submission's model.py on the pristine and degraded test images; writes predictions.csv and run_report.json.

CodaBench:  python3 ingestion.py INPUT_DATA OUTPUT PROGRAM SUBMISSION
Locally:    python3 ingestion.py   (this repository's input_data/eval, output/res and starting_kit/)

This program is the supervisor: it never imports the submission. The model runs in its own process
(model_process.py, model_runner.py); this one decodes the images, sends pixels, checks the answers, keeps the
clock and the time budget, and is the only writer of the outputs. Where Linux allows, it runs as PID 1 of its own
PID namespace, as it does in the competition container (pid_namespace.py).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

import machine_facts
import pid_namespace
import process_tree
import stop_signals
from challenge_labels import SETS
from disk_watch import DiskWatch
from model_messages import Answer, LoadFailed
from model_process import ModelEnded, ModelProcess, child_environment
from output_capture import CappedLog
from output_files import (CLEAN_UP_SECONDS, PREDICTIONS, RUN_REPORT, SUBMISSION_LOG, OutputFolder, predictions_text,
                          report_text)
from reference_guard import ReferenceExposedError, check_no_reference
from run_report import ERRORS_SHOWN, TEXT_CAP, WARNINGS_SHOWN, RunReport, SetFigures, clean_text, throughput
from requirements_check import check_requirements
from submission_files import (DEFAULT_MAX_UNPACKED_MB, SubmissionNotRunnable, find_model_dir, read_requirements,
                              unpack_zip)
from time_budget import BudgetExceeded, Interrupted, TimeBudget
from tree_removal import remove_tree
from zip_images import ImageEntry, InputDataError, InputZip, ZipReader, decoded_batches, list_images

PROGRAM_DIR = Path(__file__).resolve().parent
REPO = PROGRAM_DIR.parent
TIME_BUDGET_FILE = "time_budget.json"
DEFAULT_BUDGET_SECONDS = 3300.0  # local runs only: on the platform each phase has the time_budget.json pack.py writes
DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_BATCH_SIZE = 32
DEFAULT_LOG_CAP_BYTES = 5_000_000
DEFAULT_FAIL_FAST_IMAGES = 64
DEFAULT_MAX_THREADS = 4096
DEFAULT_MAX_DISK_MB = 16384
OWN_WARNINGS = 3  # room kept in the report's warnings for the supervisor's own (leftover processes, output folder)
EXIT_OK, EXIT_FAILED = 0, 1
ENVIRONMENT = """environment variables (an option given on the command line wins):
  WBC_TIME_BUDGET_SECONDS  time budget for the whole run (0: none); without it, <input>/time_budget.json
                           ({"seconds": N}, written by tools/pack.py), else 3300
  WBC_MAX_ERROR_RATE       fraction of images allowed to fail, default 0.01
  WBC_FAIL_FAST_IMAGES     stop when this many first images all failed, default 64 (0: never)
  WBC_BATCH_SIZE           images per predict_batch call, default 32
  WBC_WORKERS              JPEG decoding threads, default: the usable cores (at most 8)
  WBC_MEMORY_LIMIT_MB      address-space limit (RLIMIT_AS) of the model's process in MB, default none;
                           CUDA reserves a large address space: leave it unset on a GPU
  WBC_MAX_UNPACKED_MB      largest total size a submission zip may unpack to, default 4096
  WBC_MAX_THREADS          most threads the submission may run at once, all its processes' together, default
                           4096 (0: no limit); checked where the supervisor is PID 1 (the platform's container,
                           a local namespace)
  WBC_MAX_DISK_MB          most disk space the submission may take while it runs, on each filesystem it can
                           write to, default 16384 and at most half of what was free (0: no limit)
  WBC_LOG_CAP_BYTES        size cap of submission_output.log, default 5000000"""


@dataclass(frozen=True)
class Options:
    """How to run: every knob of the command line and its WBC_* variable."""
    budget_seconds: float | None = DEFAULT_BUDGET_SECONDS
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    fail_fast_images: int = DEFAULT_FAIL_FAST_IMAGES
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int | None = None
    memory_limit_mb: int | None = None
    max_unpacked_mb: int = DEFAULT_MAX_UNPACKED_MB
    max_threads: int = DEFAULT_MAX_THREADS
    max_disk_mb: int = DEFAULT_MAX_DISK_MB
    seed: int = 0
    log_cap_bytes: int = DEFAULT_LOG_CAP_BYTES
    phase: str | None = None


@dataclass(frozen=True)
class Arguments:
    """The command line, typed: the four CodaBench paths (or the local run's defaults) and the Options."""
    input_data: Path
    output: Path
    program: Path
    submission: Path
    options: Options


class FailFast(Exception):
    """The run cannot go on (fail-fast); the message is the report's reason."""


class OutputsNotWritten(Exception):
    """The output folder cannot be used or run_report.json cannot be written: no report can say so, the console does."""


@dataclass
class Run:
    """One ingestion run's results so far, written out at the end however the run ends."""
    input_dir: Path
    output: OutputFolder
    submission: Path
    options: Options
    workers: int
    report: RunReport | None = None  # the record written at the end
    # What the run learns along the way, for the report's fields of the same names.
    model_dir: str | None = None
    requirements: dict | None = None  # requirements.txt: its name and each entry's status (requirements_check.py)
    load_seconds: float | None = None
    prediction_mode: str | None = None  # predict_batch or predict
    device: str = "cpu"
    torch_version: str | None = None
    traceback: str | None = None  # the participant's, when loading failed
    unexpected_output_files: list = field(default_factory=list)
    stage: str = "starting"
    results: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    batch_fallbacks: int = 0
    with_predictions: bool = False  # predictions.csv is written once predicting has started
    set_times: dict = field(default_factory=dict)
    zips: dict = field(default_factory=dict)  # set -> InputZip, opened before the model's process starts
    entries: dict = field(default_factory=dict)
    model: ModelProcess | None = None
    log: CappedLog | None = None
    started: float = field(default_factory=time.monotonic)

    def record(self, entry: ImageEntry, label: str, probs: np.ndarray | None) -> None:
        self.results[entry.set_name, entry.image_id] = (label, probs)

    def record_error(self, entry: ImageEntry, message: str) -> None:
        self.errors.append({"set": entry.set_name, "image_id": entry.image_id, "error": message})

    def warn(self, warnings: list[str]) -> None:
        """The model's warnings, as many as the report keeps (less room for the supervisor's own)."""
        room = WARNINGS_SHOWN - OWN_WARNINGS - len(self.warnings)
        self.warnings += warnings[:max(0, room)]

    @property
    def done(self) -> int:
        return len(self.results) + len(self.errors)

    @property
    def total(self) -> int:
        return sum(len(entries) for entries in self.entries.values())


def run(input_dir: Path, output_dir: Path, program_dir: Path, submission: Path, options: Options = Options(), *,
        console: TextIO | None = None) -> dict:
    """Run the submission on input_dir/{pristine,degraded}.zip; write outputs to output_dir; return the report.

    However the run ends (budget, crash, fail-fast, a signal), the outputs are written, every process the
    submission started is killed and the temporary folder is removed.
    """
    console = console or sys.stderr
    workers = options.workers or default_workers()
    input_dir, output_dir, program_dir, submission = (Path(p).resolve() for p in (input_dir, output_dir, program_dir,
                                                                                  submission))
    process_tree.guard_supervisor()
    output = OutputFolder(output_dir)
    try:
        output.prepare()
    except OSError as error:  # before anything runs: an organizer's read-only or missing disk
        say(console, f"failed: the output folder {output_dir} cannot be used: {error.strerror or error}")
        return {"status": "failed", "reason": f"the output folder {output_dir} cannot be used"}
    state = Run(input_dir, output, submission, options, workers)
    budget = TimeBudget(options.budget_seconds, lambda: state.model and state.model.kill(), state.started).start()
    # Every signal is a named stop until the report is written (the model lives until finish() has stopped it).
    previous_handlers = stop_signals.install(lambda number: budget.stop(stop_signals.signal_name(number)))
    try:
        report = supervise(state, program_dir, budget, console)
    except OutputsNotWritten as error:
        say(console, f"failed: {error}")
        return {"status": "failed", "reason": str(error)}
    finally:
        stop_signals.restore(previous_handlers)
    say(console, f"{report.status}: {report.reason}" if report.reason else summary(report, output_dir))
    for warning in report.warnings:
        say(console, f"warning: {warning}")
    if report.traceback:
        print(report.traceback, file=console, end="")
    return report.to_dict()


def supervise(state: Run, program_dir: Path, budget: TimeBudget, console: TextIO) -> RunReport:
    """ingest(), then finish() and write_outputs() however it ended; the report written, then the temporary folder
    removed (after the report: whatever the model left there cannot hold it up)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="wbc_ingestion_"))
    try:
        try:
            status, reason = ingest(state, program_dir, temp_dir, budget, state.workers, console)
        except Exception as exc:  # a bug in ingestion itself: still leave a report, then show the traceback
            reason = f"internal error in the ingestion program while {state.stage}: {type(exc).__name__}: {exc}"
            finish(state, budget)
            write_outputs(state, "failed", reason)
            raise
        finish(state, budget)
        if status == "ok" and budget.stopped_by:  # a signal while the model's processes were being stopped
            status, reason = "failed", stop_reason(state, budget, Interrupted(budget.stopped_by))
        write_outputs(state, status, reason)
    finally:
        try:  # however deep the model's leftovers go, and no longer than the outputs' clean-up may take
            remove_tree(temp_dir, deadline=time.monotonic() + CLEAN_UP_SECONDS)
        except OSError as error:
            say(console, f"the temporary folder {temp_dir} was not removed: {error}")
    return state.report


def ingest(state: Run, program_dir: Path, temp_dir: Path, budget: TimeBudget, workers: int, console: TextIO) -> tuple:
    """The steps of a run, in order; (status, reason) however they end."""
    try:
        model_dir = check_inputs(state, program_dir, temp_dir, console)
        requirements = check_requirements_file(state, model_dir, console)
        budget.check()
        start_model(state, model_dir, requirements, temp_dir, budget, workers, console)
        with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
            for set_name in SETS:
                state.stage = f"predicting the {set_name} set"
                predict_set(state, set_name, pool, workers, console)
        budget.check()  # the supervisor's own clock: a run it overran while frozen (SIGSTOP) fails here
        return judge_error_rate(state)
    except (SubmissionNotRunnable, InputDataError, ReferenceExposedError) as exc:
        if getattr(exc, "traceback", None):
            state.traceback = exc.traceback
        return "failed", str(exc)
    except FailFast as exc:
        return "failed", str(exc)
    except (BudgetExceeded, Interrupted, ModelEnded) as exc:
        return "failed", stop_reason(state, budget, exc)


def stop_reason(state: Run, budget: TimeBudget, exc: Exception) -> str:
    """Why the run stopped early, in words: a signal to the supervisor, the budget, or how the model's process ended."""
    if budget.stopped_by is not None:
        what = (f"the ingestion program was sent {budget.stopped_by} (by the submission's process, or by whoever "
                "stopped the run)")
    elif budget.expired or isinstance(exc, BudgetExceeded):
        return (f"time budget of {state.options.budget_seconds:g} s exceeded while {state.stage} ({state.done} of "
                f"{state.total} images done); {_what_was_kept(state)}; {too_slow_hint(state)}")
    else:
        what = str(exc)
    return f"{what} while {state.stage} ({state.done} of {state.total} images done); {_what_was_kept(state)}"


def _what_was_kept(state: Run) -> str:
    return "the predictions made so far were written" if state.with_predictions else "no prediction was made"


def too_slow_hint(state: Run) -> str:
    """What a participant can do about a run the budget stopped: where the time went, and the lever to pull."""
    mode = state.prediction_mode
    if mode is None:
        return "Model() and load() alone used the budget: load less, or load faster"
    lever = ("give the model a predict_batch method, which takes a batch per call" if mode == "predict" else
             "make predict_batch faster (a lighter model, fewer test-time views, the GPU when there is one)")
    return f"the whole phase needs a faster model: {lever} (pages/starting_kit.md)"


def check_inputs(state: Run, program_dir: Path, temp_dir: Path, console: TextIO) -> Path:
    """Unpack a zipped submission, find model.py, open the input zips and list their images, refuse reachable
    reference data."""
    state.stage = "checking the input data"
    submission = state.submission
    if submission.is_file():
        submission = unpack_zip(submission, temp_dir / "submission", state.options.max_unpacked_mb * 2**20)
    model_dir, note = find_model_dir(submission)
    state.model_dir = str(model_dir)
    if note:
        say(console, note)
        state.warnings.append(note)
    if not state.input_dir.is_dir():
        raise InputDataError(f"input folder not found: {state.input_dir} (locally, `make bundle-data` builds the "
                             "demo data)")
    for set_name in SETS:
        state.zips[set_name] = InputZip(state.input_dir / f"{set_name}.zip")
        state.entries[set_name] = list_images(state.zips[set_name], set_name)
    test_ids = {entry.image_id for entries in state.entries.values() for entry in entries}
    check_no_reference([state.input_dir, program_dir], submission, test_ids)
    say(console, f"{len(state.entries['pristine'])} pristine and {len(state.entries['degraded'])} degraded images; "
                 f"submission {model_dir}")
    return model_dir


def check_requirements_file(state: Run, model_dir: Path, console: TextIO) -> dict:
    """Check the submission's requirements.txt against the image (nothing is ever installed: requirements_check.py)."""
    state.stage = "checking requirements.txt"
    section = state.requirements = {"file": None, "entries": []}
    text = read_requirements(model_dir / "requirements.txt")
    if text is None:
        return section
    section["file"] = "requirements.txt"
    entries = section["entries"] = check_requirements(text)
    counts = {}
    for entry in entries:
        counts.setdefault(entry["status"], []).append(entry["name"] or f"line {entry['line']}")
    say(console, "requirements.txt: " + "; ".join(f"{status}: {', '.join(names)}" for status, names in counts.items()))
    return section


def start_model(state: Run, model_dir: Path, requirements: dict, temp_dir: Path, budget: TimeBudget, workers: int,
                console: TextIO) -> None:
    """Start the model's process and load the Model in it; SubmissionNotRunnable when loading fails."""
    state.stage = "loading the submission"
    options = state.options
    (temp_dir / "tmp").mkdir()
    state.log = CappedLog(options.log_cap_bytes)
    hidden = [PROGRAM_DIR, REPO, state.output.path, state.input_dir]
    env = child_environment(hidden, temp_dir / "tmp", options.seed)
    slot_bytes = max(64 * 2**20, options.batch_size * 2**20)
    load_started = time.monotonic()
    # /dev/shm is left out: memory, which the container caps at 64 MiB (where half of it would be too little)
    disk = DiskWatch(["/", tempfile.gettempdir(), temp_dir, model_dir, state.output.path],
                     options.max_disk_mb) if options.max_disk_mb else None
    state.model = ModelProcess(model_dir, state.log, env, slot_bytes, options.max_threads, disk)
    budget.check()  # expired before the process existed: the watchdog had nothing to kill
    loaded = state.model.load({"model_path": str(model_dir / "model.py"), "requirements": requirements["entries"],
                               "seed": options.seed, "memory_limit_mb": options.memory_limit_mb,
                               "text_cap": 2 * TEXT_CAP})
    if isinstance(loaded, LoadFailed):
        raise SubmissionNotRunnable(loaded.message, loaded.traceback)
    state.warn(loaded.warnings)
    state.load_seconds = round(time.monotonic() - load_started, 3)
    state.prediction_mode, state.device, state.torch_version = loaded.mode, loaded.device, loaded.torch_version
    say(console, f"model loaded in {state.load_seconds:.1f} s; predicting with {state.prediction_mode} "
                 f"(batch size {options.batch_size}, {workers} decoding threads), device {state.device}")


def predict_set(state: Run, set_name: str, pool: ThreadPoolExecutor, workers: int, console: TextIO) -> None:
    """Predict one set: the pool decodes ahead, batches go to the model two at a time (one slot each)."""
    entries = state.entries[set_name]
    state.with_predictions = True
    reader = ZipReader(state.zips[set_name])
    state.set_times[set_name] = (time.monotonic(), None)
    pending, sent, done_before = [], 0, state.done
    try:
        with tqdm(total=len(entries), desc=f"{set_name:<9}", unit="img", file=console, mininterval=1.0) as bar:
            for batch in decoded_batches(reader, entries, state.options.batch_size, pool, 2 * workers, parts=workers):
                for request in split_to_slots(state, batch):
                    if len(pending) == 2:  # both slots in use: the older one is free once answered
                        receive_batch(state, pending.pop(0))
                    send_batch(state, request, slot=sent % 2)
                    pending.append(request)
                    sent += 1
                bar.update(state.done - done_before - bar.n)
            while pending:
                receive_batch(state, pending.pop(0))
            bar.update(state.done - done_before - bar.n)
    finally:
        reader.close()
    state.set_times[set_name] = (state.set_times[set_name][0], time.monotonic())


def split_to_slots(state: Run, batch: list) -> list[list]:
    """The decoded batch as requests that each fit one shared-memory slot; unreadable or oversized images are
    recorded as errors here."""
    slot_bytes = state.model.slots.slot_bytes
    requests, current, size = [], [], 0
    for entry, pixels, error in batch:
        if error is None and pixels.nbytes > slot_bytes:
            error = f"image {entry.member} is too large ({pixels.shape[1]}x{pixels.shape[0]} pixels)"
        if error is not None:
            state.record_error(entry, error)
            continue
        if current and size + pixels.nbytes > slot_bytes:
            requests.append(current)
            current, size = [], 0
        current.append((entry, pixels))
        size += pixels.nbytes
    return requests + ([current] if current else [])


def send_batch(state: Run, request: list, slot: int) -> None:
    state.model.predict(slot, [pixels for _, pixels in request])


def receive_batch(state: Run, request: list) -> None:
    """Record one request's checked answers (model_messages.py) as they come; an image left unanswered is an error."""
    answered = set()

    def record(answer: Answer) -> None:
        answered.add(answer.index)
        entry = request[answer.index][0]
        if answer.error is not None:
            state.record_error(entry, answer.error)
        else:
            state.record(entry, answer.label, answer.probs)

    done = state.model.answers(len(request), record)
    state.warn(done.warnings)
    state.batch_fallbacks += done.fallbacks
    for index, (entry, _) in enumerate(request):
        if index not in answered:
            state.record_error(entry, "the submission's process gave no answer for this image")
    check_fail_fast(state)


def check_fail_fast(state: Run) -> None:
    """Stop when the first images have all failed: the rest would fail the same way, for hours."""
    threshold = state.options.fail_fast_images
    if threshold and not state.results and len(state.errors) >= threshold:
        first = state.errors[0]
        raise FailFast(f"the first {len(state.errors)} images all failed, so the run was stopped early "
                       f"(fail-fast after {threshold} images, WBC_FAIL_FAST_IMAGES); first: "
                       f"{first['set']}/{first['image_id']}: {first['error']}")


def judge_error_rate(state: Run) -> tuple:
    total, failed = state.total, len(state.errors)
    if failed > state.options.max_error_rate * total:
        first = state.errors[0]
        return "failed", (f"{failed} of {total} images failed ({failed / total:.2%}), more than the allowed "
                          f"{state.options.max_error_rate:.2%}; first: {first['set']}/{first['image_id']}: "
                          f"{first['error']}")
    return "ok", None


def finish(state: Run, budget: TimeBudget) -> None:
    """Stop the model (freeze and kill every process it started), close the log and the input zips."""
    state.stage = "finishing the run"
    if state.model is not None:
        leftovers = state.model.stop()  # the watchdog stays armed: nothing the model does can hold this up
        if leftovers:
            noun, verb = ("process", "was") if leftovers == 1 else ("processes", "were")
            state.warnings.append(f"{leftovers} {noun} the submission started {verb} still running; killed")
    budget.cancel()
    if state.log is not None:
        state.log.stop()
        if state.log.write_error:
            state.warnings.append(f"what the submission printed was kept only in part ({state.log.kept_bytes} of "
                                  f"{state.log.total_bytes} bytes): the ingestion's log file could not be written "
                                  f"({state.log.write_error}; a disk the submission filled?)")
    for source in state.zips.values():
        source.close()


def set_figures(state: Run, now: float) -> dict[str, SetFigures]:
    """Each set's counts and seconds, on the supervisor's own clock."""
    figures = {}
    for set_name in SETS:
        predicted = sum(1 for key in state.results if key[0] == set_name)
        errors = sum(1 for error in state.errors if error["set"] == set_name)
        start, end = state.set_times.get(set_name, (now, now))
        seconds = (end or now) - start
        # microseconds: scoring divides images by these, and a tiny set can take under a millisecond
        figures[set_name] = SetFigures(len(state.entries.get(set_name, ())), predicted, errors, round(seconds, 6),
                                       round(throughput(predicted + errors, seconds), 3))
    return figures


def build_report(state: Run, status: str, reason: str | None, predictions_written: bool,
                 probabilities: bool | None) -> RunReport:
    """The run's record, from its results so far and what it learnt along the way, field by field."""
    now, options = time.monotonic(), state.options
    sets = set_figures(state, now)
    processed = sum(f.predicted + f.errors for f in sets.values())
    seconds = sum(f.seconds for f in sets.values())
    own_peak, model_peak = machine_facts.peak_memory_mb()
    machine = machine_facts.environment()
    log = state.log
    return RunReport(
        status=status, reason=reason, submission=str(state.submission), sets=sets,
        errors=state.errors[:ERRORS_SHOWN], errors_total=len(state.errors),
        error_rate=round(len(state.errors) / state.total, 6) if state.total else None,
        images_per_second=round(throughput(processed, seconds), 3),
        total_seconds=round(now - state.started, 3),
        budget_seconds=options.budget_seconds if options.budget_seconds and options.budget_seconds > 0 else None,
        max_error_rate=options.max_error_rate, fail_fast_images=options.fail_fast_images,
        batch_size=options.batch_size, workers=state.workers, memory_limit_mb=options.memory_limit_mb,
        seed=options.seed, phase=options.phase, warnings=state.warnings[:WARNINGS_SHOWN],
        batch_fallbacks=state.batch_fallbacks, predictions_written=predictions_written, probabilities=probabilities,
        submission_log=None if log is None else {"file": SUBMISSION_LOG, "bytes_printed": log.total_bytes,
                                                 "truncated": log.truncated},
        unexpected_output_files=state.unexpected_output_files, model_dir=state.model_dir,
        load_seconds=state.load_seconds, prediction_mode=state.prediction_mode, device=state.device,
        requirements=state.requirements, traceback=state.traceback, torch_version=state.torch_version,
        peak_memory_mb=round(model_peak, 1), peak_memory_supervisor_mb=round(own_peak, 1),
        python_version=machine.python_version, numpy_version=machine.numpy_version,
        pillow_version=machine.pillow_version, platform=machine.platform, cpu_count=machine.cpu_count)


def write_outputs(state: Run, status: str, reason: str | None) -> None:
    """Once the model's processes are gone: list and remove what the submission left in the output folder (freeing
    any space it filled), then write predictions.csv (once predicting started), the log and run_report.json (last).
    An output that cannot be written (a full disk, a read-only folder, a file-size limit) fails the run by name; when
    the report itself cannot be written, OutputsNotWritten says why."""
    output = state.output
    try:
        found = state.unexpected_output_files = output.foreign()
        kept = output.clean_up()
    except OSError as error:  # the folder itself cannot be listed: the writes below say whether it can be used
        found, kept = [], []
        state.warnings.append(f"the output folder {output.path} could not be checked for what the submission left: "
                              f"{error.strerror or error}")
    if found:
        state.warnings.append("the submission wrote into the output folder (removed before the outputs were "
                              "written): " + ", ".join(found[:5]) + (f" and {len(found) - 5} more" if found[5:] else "")
                              + (f"; not removed (in {CLEAN_UP_SECONDS:g} s, or at all): {', '.join(kept[:5])}"
                                 if kept else ""))
    if output.replaced:
        state.warnings.append(f"the output folder {output.path} was removed or replaced during the run; it was "
                              "made again")
    if output.moved:
        state.warnings.append(f"the output folder {output.path} was moved during the run (it, or a folder above it, "
                              "was renamed); the outputs were written both at its path and into the moved folder")
    probabilities, unwritten, predictions_written = None, [], False
    if state.with_predictions:
        text, probabilities = predictions_text(state.results)
        predictions_written = _write(unwritten, PREDICTIONS, lambda: output.write_text(PREDICTIONS, text))
    if state.log is not None:
        _write(unwritten, SUBMISSION_LOG, lambda: output.write(SUBMISSION_LOG, state.log.copy_to))
    if unwritten:
        status, reason = "failed", (f"the ingestion program could not write {'; '.join(unwritten)} in {output.path}"
                                    + (f" (the run had ended: {reason})" if reason else ""))
    state.report = build_report(state, status, reason, predictions_written, probabilities)
    try:
        output.write_text(RUN_REPORT, report_text(state.report.to_dict()))
    except OSError as error:
        raise OutputsNotWritten(f"the ingestion program could not write {RUN_REPORT} in {output.path}: "
                                f"{error.strerror or error}; the run is lost ({reason or 'it had ended ok'})") from None
    finally:
        output.close()


def _write(unwritten: list[str], name: str, write: Callable[[], None]) -> bool:
    """Write one output; on failure, note '<name>: <why>' in `unwritten` instead of raising. Whether it was written."""
    try:
        write()
    except OSError as error:
        unwritten.append(f"{name}: {error.strerror or error}")
        return False
    return True


def say(console: TextIO, message: str) -> None:
    """One line on the console; the text is cleaned (run_report.clean_text): no escape sequence reaches a terminal."""
    print(f"[ingestion] {clean_text(message, len(message))}", file=console, flush=True)


def summary(report: RunReport, output_dir: Path) -> str:
    """The success line: what was predicted, how fast, and the time used against the budget (the platform stops a
    run at the phase's budget, which can be far shorter than a local run's default)."""
    budget = (f"{report.total_seconds:.0f} s of the {report.budget_seconds:g} s time budget" if report.budget_seconds
              else f"{report.total_seconds:.0f} s (no time budget)")
    return (f"ok: {report.sets['pristine'].predicted} pristine + {report.sets['degraded'].predicted} degraded "
            f"predictions, {report.errors_total} errors, {report.images_per_second:.1f} images/s, {budget} "
            f"-> {output_dir / PREDICTIONS}")


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


def budget_from_file(input_dir: Path) -> float | None:
    """The organizer's budget for this phase, from <input_dir>/time_budget.json ({"seconds": N}), if present."""
    path = Path(input_dir) / TIME_BUDGET_FILE
    if not path.is_file():
        return None
    try:
        seconds = json.loads(path.read_text(encoding="utf-8"))["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(seconds)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputDataError(f"{path} must hold {{\"seconds\": N}} with N a number >= 0 ({type(exc).__name__}: "
                             f"{exc})") from None
    return float(seconds)


OPTION_VARIABLES = (  # option, variable, type, default
    ("max_error_rate", "WBC_MAX_ERROR_RATE", float, DEFAULT_MAX_ERROR_RATE),
    ("fail_fast_images", "WBC_FAIL_FAST_IMAGES", int, DEFAULT_FAIL_FAST_IMAGES),
    ("batch_size", "WBC_BATCH_SIZE", int, DEFAULT_BATCH_SIZE),
    ("workers", "WBC_WORKERS", int, None),
    ("memory_limit_mb", "WBC_MEMORY_LIMIT_MB", int, None),
    ("max_unpacked_mb", "WBC_MAX_UNPACKED_MB", int, DEFAULT_MAX_UNPACKED_MB),
    ("max_threads", "WBC_MAX_THREADS", int, DEFAULT_MAX_THREADS),
    ("max_disk_mb", "WBC_MAX_DISK_MB", int, DEFAULT_MAX_DISK_MB),
    ("log_cap_bytes", "WBC_LOG_CAP_BYTES", int, DEFAULT_LOG_CAP_BYTES),
    ("budget_seconds", "WBC_TIME_BUDGET_SECONDS", float, None))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=ENVIRONMENT,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("input_data", "output", "program", "submission"):
        parser.add_argument(name, nargs="?", help="CodaBench positional argument (give all four or none)")
    parser.add_argument("--phase", default="eval", help="local run: which input_data/<phase> to use (default eval)")
    parser.add_argument("--submission", dest="submission_option", metavar="PATH",
                        help="submission folder or zip (default: the starting kit)")
    parser.add_argument("--budget-seconds", type=float, help="time budget in seconds (0: none)")
    parser.add_argument("--max-error-rate", type=float, help="fail over this fraction of failed images")
    parser.add_argument("--fail-fast-images", type=int, help="stop when this many first images all failed (0: never)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--workers", type=int, help="JPEG decoding threads")
    parser.add_argument("--memory-limit-mb", type=int, help="address-space limit of the model's process")
    parser.add_argument("--max-unpacked-mb", type=int, help="largest total size a submission zip may unpack to")
    parser.add_argument("--max-threads", type=int, help="most threads the submission may run at once (0: no limit)")
    parser.add_argument("--max-disk-mb", type=int, help="most disk space the submission may take (0: no limit)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_args(argv: list[str] | None = None) -> Arguments:
    """The command line and the WBC_* variables, typed once; the parser's usage error on anything invalid."""
    parser = build_parser()
    args = parser.parse_args(argv)
    positional = [args.input_data, args.output, args.program, args.submission]
    if any(positional) and not all(positional):
        parser.error("give all four positional arguments (INPUT_DATA OUTPUT PROGRAM SUBMISSION) or none")
    local = not any(positional)
    if local:
        positional = [REPO / "input_data" / args.phase, REPO / "output" / "res", PROGRAM_DIR, REPO / "starting_kit"]
    input_data, output, program, submission = (Path(path) for path in positional)
    values = {}
    for option, variable, kind, default in OPTION_VARIABLES:
        values[option] = getattr(args, option, None)
        if values[option] is None:
            text = os.environ.get(variable)
            try:
                values[option] = kind(text) if text else default
            except ValueError:
                parser.error(f"{variable}={text!r} is not a valid {kind.__name__}")
    if values["budget_seconds"] is None:
        try:
            values["budget_seconds"] = budget_from_file(input_data)
        except InputDataError as exc:
            parser.error(str(exc))
        if values["budget_seconds"] is None:
            values["budget_seconds"] = DEFAULT_BUDGET_SECONDS
    options = Options(**values, seed=args.seed, phase=args.phase if local else None)
    if options.batch_size < 1 or (options.workers is not None and options.workers < 1):
        parser.error("--batch-size and --workers must be at least 1")
    if options.max_threads < 0 or options.max_disk_mb < 0:
        parser.error("--max-threads and --max-disk-mb must be at least 0 (0: no limit)")
    return Arguments(input_data, output, program, Path(args.submission_option or submission), options)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pid_namespace.watch_lifeline()
    code = pid_namespace.run_as_first_process(Path(__file__).resolve(), sys.argv[1:] if argv is None else argv)
    if code is not None:
        return code
    report = run(args.input_data, args.output, args.program, args.submission, args.options)
    return EXIT_OK if report["status"] == "ok" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
