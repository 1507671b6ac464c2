"""Runs a submission's model.py on the pristine and degraded test images; writes predictions.csv and run_report.json.

CodaBench:  python3 ingestion.py INPUT_DATA OUTPUT PROGRAM SUBMISSION
Locally:    python3 ingestion.py   (this repository's input_data/eval, output/res and starting_kit/)

This program is the supervisor: it never imports the submission. The model runs in its own process
(model_process.py, model_runner.py); this one decodes the images, sends pixels, checks the answers, keeps the
clock and the time budget, and is the only writer of the outputs.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

import machine_facts
import process_tree
from challenge_labels import SETS
from model_outputs import PredictionError, checked_answer
from model_process import ModelEnded, ModelProcess, child_environment
from output_capture import CappedLog
from output_files import (PREDICTIONS, RUN_REPORT, SUBMISSION_LOG, remove_foreign, snapshot, write_predictions,
                          write_report)
from reference_guard import ReferenceExposedError, check_no_reference
from run_report import ERRORS_SHOWN, RunReport, SetFigures, images_per_second
from requirements_check import check_requirements
from submission_loader import (DEFAULT_MAX_UNPACKED_MB, SubmissionNotRunnable, check_requirements_size, find_model_dir,
                               unpack_zip)
from time_budget import BudgetExceeded, TimeBudget
from zip_images import ImageEntry, InputDataError, ZipReader, decoded_batches, list_images

PROGRAM_DIR = Path(__file__).resolve().parent
REPO = PROGRAM_DIR.parent
TIME_BUDGET_FILE = "time_budget.json"
DEFAULT_BUDGET_SECONDS = 3300.0  # local runs only: on the platform each phase has the time_budget.json pack.py writes
DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_BATCH_SIZE = 32
DEFAULT_LOG_CAP_BYTES = 5_000_000
DEFAULT_FAIL_FAST_IMAGES = 64
WARNINGS_SHOWN = 20
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
    seed: int = 0
    log_cap_bytes: int = DEFAULT_LOG_CAP_BYTES
    phase: str | None = None


class RunStopped(Exception):
    """The run cannot go on (fail-fast); the message is the report's reason."""


@dataclass
class Run:
    """One ingestion run's results so far, written out at the end however the run ends."""
    input_dir: Path
    output_dir: Path
    submission: Path
    options: Options
    workers: int
    facts: dict = field(default_factory=dict)  # RunReport fields learnt along the way (model_dir, device, ...)
    report: RunReport | None = None  # the record written at the end
    stage: str = "starting"
    results: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    batch_fallbacks: int = 0
    with_predictions: bool = False  # predictions.csv is written once predicting has started
    set_times: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)
    model: ModelProcess | None = None
    log: CappedLog | None = None
    started: float = field(default_factory=time.monotonic)

    def record(self, entry: ImageEntry, label: str, probs: np.ndarray | None) -> None:
        self.results[entry.set_name, entry.image_id] = (label, probs)

    def record_error(self, entry: ImageEntry, message: str) -> None:
        self.errors.append({"set": entry.set_name, "image_id": entry.image_id, "error": message})

    @property
    def done(self) -> int:
        return len(self.results) + len(self.errors)

    @property
    def total(self) -> int:
        return sum(len(entries) for entries in self.entries.values())


def run(input_dir: Path, output_dir: Path, program_dir: Path, submission: Path, *, console: TextIO | None = None,
        **options: object) -> dict:
    """Run the submission on input_dir/{pristine,degraded}.zip; write outputs to output_dir; return the report.

    Keyword options: the fields of Options. However the run ends (budget, crash, fail-fast), the outputs are
    written, every process the submission started is killed and the temporary folder is removed.
    """
    options = Options(**options)
    console = console or sys.stderr
    workers = options.workers or default_workers()
    input_dir, output_dir, program_dir, submission = (Path(p).resolve() for p in (input_dir, output_dir, program_dir,
                                                                                  submission))
    process_tree.guard_supervisor()
    before = prepare_output(output_dir)
    state = Run(input_dir, output_dir, submission, options, workers)
    budget = TimeBudget(options.budget_seconds, lambda: state.model and state.model.kill(), state.started).start()
    temp_dir = Path(tempfile.mkdtemp(prefix="wbc_ingestion_"))
    try:
        status, reason = ingest(state, program_dir, temp_dir, budget, workers, console)
    except Exception as exc:  # a bug in ingestion itself: still leave a report, then show the traceback
        finish(state, before, temp_dir, budget)
        write_outputs(state, "failed", f"internal error in the ingestion program while {state.stage}: "
                                       f"{type(exc).__name__}: {exc}")
        raise
    finish(state, before, temp_dir, budget)
    write_outputs(state, status, reason)
    report = state.report
    say(console, f"{status}: {reason}" if reason else summary(report, output_dir))
    for warning in report.warnings:
        say(console, f"warning: {warning}")
    if report.traceback:
        print(report.traceback, file=console, end="")
    return report.to_dict()


def ingest(state: Run, program_dir: Path, temp_dir: Path, budget: TimeBudget, workers: int, console: TextIO) -> tuple:
    """The steps of a run, in order; (status, reason) however they end."""
    try:
        model_dir = check_inputs(state, program_dir, temp_dir, console)
        requirements = prepare_requirements(state, model_dir, console)
        budget.check()
        start_model(state, model_dir, requirements, temp_dir, budget, workers, console)
        with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
            for set_name in SETS:
                state.stage = f"predicting the {set_name} set"
                predict_set(state, set_name, pool, workers, console)
        return judge_error_rate(state)
    except (SubmissionNotRunnable, InputDataError, ReferenceExposedError) as exc:
        if getattr(exc, "traceback", None):
            state.facts["traceback"] = exc.traceback
        return "failed", str(exc)
    except RunStopped as exc:
        return "failed", str(exc)
    except (BudgetExceeded, ModelEnded) as exc:
        what = (f"time budget of {state.options.budget_seconds:g} s exceeded" if budget.expired
                or isinstance(exc, BudgetExceeded) else str(exc))
        return "failed", (f"{what} while {state.stage} ({state.done} of {state.total} images done); "
                          "the predictions made so far were written")


def check_inputs(state: Run, program_dir: Path, temp_dir: Path, console: TextIO) -> Path:
    """Unpack a zipped submission, find model.py, refuse reachable reference data, list the images."""
    state.stage = "checking the input data"
    submission = state.submission
    if submission.is_file():
        submission = unpack_zip(submission, temp_dir / "submission", state.options.max_unpacked_mb * 2**20)
    model_dir, note = find_model_dir(submission)
    state.facts["model_dir"] = str(model_dir)
    if note:
        say(console, note)
        state.warnings.append(note)
    check_no_reference([state.input_dir, program_dir, submission])
    if not state.input_dir.is_dir():
        raise InputDataError(f"input folder not found: {state.input_dir} (locally, `make bundle-data` builds the "
                             "demo data)")
    state.entries = {s: list_images(state.input_dir / f"{s}.zip", s) for s in SETS}
    say(console, f"{len(state.entries['pristine'])} pristine and {len(state.entries['degraded'])} degraded images; "
                 f"submission {model_dir}")
    return model_dir


def prepare_requirements(state: Run, model_dir: Path, console: TextIO) -> dict:
    """Check the submission's requirements.txt against the image (nothing is ever installed: requirements_check.py)."""
    state.stage = "checking requirements.txt"
    path = model_dir / "requirements.txt"
    section = state.facts["requirements"] = {"file": None, "entries": []}
    if not path.is_file():
        return section
    check_requirements_size(path)
    section["file"] = path.name
    entries = section["entries"] = check_requirements(path)
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
    state.log = CappedLog(temp_dir / SUBMISSION_LOG, options.log_cap_bytes)
    hidden = [PROGRAM_DIR, REPO, state.output_dir, state.input_dir]
    env = child_environment(hidden, temp_dir / "tmp", options.seed)
    slot_bytes = max(64 * 2**20, options.batch_size * 2**20)
    load_started = time.monotonic()
    state.model = ModelProcess(model_dir, state.log, env, slot_bytes)
    budget.check()  # expired before the process existed: the watchdog had nothing to kill
    state.model.send({"load": {"model_path": str(model_dir / "model.py"), "requirements": requirements["entries"],
                               "seed": options.seed, "memory_limit_mb": options.memory_limit_mb}})
    answer = state.model.receive()
    if "failed" in answer:
        raise SubmissionNotRunnable(str(answer["failed"]), answer.get("traceback"))
    loaded = answer.get("loaded") or {}
    state.warnings += [str(w) for w in loaded.get("warnings", [])]
    facts = state.facts
    facts["load_seconds"] = round(time.monotonic() - load_started, 3)
    facts["prediction_mode"] = "predict_batch" if loaded.get("mode") == "predict_batch" else "predict"
    facts["device"] = str(loaded.get("device", "cpu"))
    facts["torch_version"] = loaded.get("torch_version")
    say(console, f"model loaded in {facts['load_seconds']:.1f} s; predicting with {facts['prediction_mode']} "
                 f"(batch size {options.batch_size}, {workers} decoding threads), device {facts['device']}")


def predict_set(state: Run, set_name: str, pool: ThreadPoolExecutor, workers: int, console: TextIO) -> None:
    """Predict one set: the pool decodes ahead, batches go to the model two at a time (one slot each)."""
    entries = state.entries[set_name]
    state.with_predictions = True
    reader = ZipReader(state.input_dir / f"{set_name}.zip")
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
    shapes = state.model.slots.write(slot, [pixels for _, pixels in request])
    state.model.send({"predict": {"slot": slot, "shapes": shapes}})


def receive_batch(state: Run, request: list) -> None:
    """Collect one request's answers, check each again, record them."""
    answered = set()
    while True:
        message = state.model.receive()
        if "done" in message:
            break
        for item in message.get("items", []):
            record_answer(state, request, item, answered)
    done = message["done"] if isinstance(message["done"], dict) else {}
    state.warnings += [str(w) for w in done.get("warnings", [])][:WARNINGS_SHOWN]
    state.batch_fallbacks += int(done.get("fallbacks", 0)) if str(done.get("fallbacks", 0)).isdigit() else 0
    for index, (entry, _) in enumerate(request):
        if index not in answered:
            state.record_error(entry, "the submission's process gave no answer for this image")
    check_fail_fast(state)


def record_answer(state: Run, request: list, item: object, answered: set) -> None:
    """One [index, label, probs, error] answer: checked again here, whatever the model's process claims."""
    try:
        index, label, probs, error = item
        entry = request[index][0]
    except (TypeError, ValueError, IndexError):
        raise ModelEnded("the submission's process sent back an answer of the wrong shape") from None
    if index in answered:
        return
    answered.add(index)
    if error is not None:
        state.record_error(entry, str(error))
        return
    try:
        label, checked = checked_answer(label if probs is None else np.asarray(probs, dtype=np.float64))
    except (PredictionError, TypeError, ValueError) as exc:
        state.record_error(entry, f"the submission's process sent back an invalid answer ({exc})")
        return
    state.record(entry, label, checked)


def check_fail_fast(state: Run) -> None:
    """Stop when the first images have all failed: the rest would fail the same way, for hours."""
    threshold = state.options.fail_fast_images
    if threshold and not state.results and len(state.errors) >= threshold:
        first = state.errors[0]
        raise RunStopped(f"the first {len(state.errors)} images all failed, so the run was stopped early "
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


def finish(state: Run, before: set, temp_dir: Path, budget: TimeBudget) -> None:
    """Stop the model (every process it started), close the log, clean the output folder, remove the temp folder."""
    budget.cancel()
    if state.model is not None:
        leftovers = state.model.stop()
        if leftovers:
            noun, verb = ("process", "was") if leftovers == 1 else ("processes", "were")
            state.warnings.append(f"{leftovers} {noun} the submission started {verb} still running; killed")
    removed = remove_foreign(state.output_dir, before)
    state.facts["unexpected_output_files"] = removed[:50]
    if removed:
        state.warnings.append("the submission wrote into the output folder (removed before the outputs were "
                              "written): " + ", ".join(removed[:5]))
    if state.log is not None:
        state.log.stop()
        shutil.move(state.log.path, state.output_dir / SUBMISSION_LOG)
    shutil.rmtree(temp_dir, ignore_errors=True)


def prepare_output(output_dir: Path) -> set:
    """Create the output folder, remove a previous run's files; what is there now (kept by the final clean-up)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in (PREDICTIONS, RUN_REPORT, SUBMISSION_LOG):
        (output_dir / name).unlink(missing_ok=True)
    return snapshot(output_dir)


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
                                       round(images_per_second(predicted + errors, seconds), 3))
    return figures


def build_report(state: Run, status: str, reason: str | None, predictions_written: bool,
                 probabilities: bool | None) -> RunReport:
    """The run's record, from its results so far and the facts learnt along the way."""
    now, options = time.monotonic(), state.options
    sets = set_figures(state, now)
    processed = sum(f.predicted + f.errors for f in sets.values())
    seconds = sum(f.seconds for f in sets.values())
    own_peak, model_peak = machine_facts.peak_memory_mb()
    log = state.log
    return RunReport(
        status=status, reason=reason, submission=str(state.submission), sets=sets,
        errors=state.errors[:ERRORS_SHOWN], errors_total=len(state.errors),
        error_rate=round(len(state.errors) / state.total, 6) if state.total else None,
        images_per_second=round(images_per_second(processed, seconds), 3),
        total_seconds=round(now - state.started, 3),
        budget_seconds=options.budget_seconds if options.budget_seconds and options.budget_seconds > 0 else None,
        max_error_rate=options.max_error_rate, fail_fast_images=options.fail_fast_images,
        batch_size=options.batch_size, workers=state.workers, memory_limit_mb=options.memory_limit_mb,
        seed=options.seed, phase=options.phase, warnings=state.warnings[:WARNINGS_SHOWN],
        batch_fallbacks=state.batch_fallbacks, predictions_written=predictions_written, probabilities=probabilities,
        submission_log=None if log is None else {"file": SUBMISSION_LOG, "bytes_printed": log.total_bytes,
                                                 "truncated": log.truncated},
        peak_memory_mb=round(model_peak, 1), peak_memory_supervisor_mb=round(own_peak, 1),
        **state.facts, **machine_facts.environment())


def write_outputs(state: Run, status: str, reason: str | None) -> None:
    """predictions.csv (once predicting started), then run_report.json last."""
    probabilities = None
    if state.with_predictions:
        probabilities = write_predictions(state.output_dir / PREDICTIONS, state.results)
    state.report = build_report(state, status, reason, state.with_predictions, probabilities)
    write_report(state.output_dir / RUN_REPORT, state.report.to_dict())


def say(console: TextIO, message: str) -> None:
    print(f"[ingestion] {message}", file=console, flush=True)


def summary(report: RunReport, output_dir: Path) -> str:
    return (f"ok: {report.sets['pristine'].predicted} pristine + {report.sets['degraded'].predicted} degraded "
            f"predictions, {report.errors_total} errors, {report.images_per_second:.1f} images/s "
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
    parser.add_argument("--seed", type=int, default=0)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    positional = [args.input_data, args.output, args.program, args.submission]
    if any(positional) and not all(positional):
        parser.error("give all four positional arguments (INPUT_DATA OUTPUT PROGRAM SUBMISSION) or none")
    args.local = not any(positional)
    if args.local:
        args.input_data, args.output = REPO / "input_data" / args.phase, REPO / "output" / "res"
        args.program, args.submission = PROGRAM_DIR, REPO / "starting_kit"
    if args.submission_option:
        args.submission = args.submission_option
    for option, variable, kind, default in OPTION_VARIABLES:
        if getattr(args, option, None) is None:
            value = os.environ.get(variable)
            try:
                setattr(args, option, kind(value) if value else default)
            except ValueError:
                parser.error(f"{variable}={value!r} is not a valid {kind.__name__}")
    if args.budget_seconds is None:
        try:
            args.budget_seconds = budget_from_file(Path(args.input_data))
        except InputDataError as exc:
            parser.error(str(exc))
        if args.budget_seconds is None:
            args.budget_seconds = DEFAULT_BUDGET_SECONDS
    if args.batch_size < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--batch-size and --workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = {name: getattr(args, name) for name in Options.__dataclass_fields__ if name != "phase"}
    report = run(args.input_data, args.output, args.program, args.submission,
                 phase=args.phase if args.local else None, **options)
    return EXIT_OK if report["status"] == "ok" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
