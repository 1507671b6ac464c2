"""Runs a submission's model.py on the pristine and degraded test images; writes predictions.csv and run_report.json.

CodaBench:  python3 ingestion.py INPUT_DATA OUTPUT PROGRAM SUBMISSION
Locally:    python3 ingestion.py   (this repository's input_data/eval, output/res and starting_kit/)
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

import run_report
from model_outputs import PredictionError, normalise
from output_capture import OutputCapture, open_console
from output_files import PREDICTIONS, RUN_REPORT, SETS, SUBMISSION_LOG, write_predictions, write_report
from reference_guard import ReferenceExposedError, check_no_reference
from requirements_check import check_requirements, install_missing
from submission_loader import (SubmissionError, build_model, describe_exception, find_model_dir,
                               import_model_module, unpack_zip)
from time_budget import TimeBudget
from zip_images import InputDataError, ZipReader, decoded_batches, list_images

PROGRAM_DIR = Path(__file__).resolve().parent
REPO = PROGRAM_DIR.parent
DEFAULT_BUDGET_SECONDS = 3300.0  # keep below the phase's execution_time_limit in competition.yaml
DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_BATCH_SIZE = 32
DEFAULT_LOG_CAP_BYTES = 5_000_000
WARNINGS_SHOWN = 20
EXIT_OK, EXIT_FAILED = 0, 1
ENVIRONMENT = """environment variables (an option given on the command line wins):
  WBC_TIME_BUDGET_SECONDS  time budget for the whole run, default 3300 (0: none)
  WBC_MAX_ERROR_RATE       fraction of images allowed to fail, default 0.01
  WBC_BATCH_SIZE           images per predict_batch call, default 32
  WBC_WORKERS              JPEG decoding threads, default: the usable cores (at most 8)
  WBC_INSTALL_REQUIREMENTS 1: pip-install allowed packages missing from the submission's requirements.txt
  WBC_ALLOWED_PACKAGES     comma-separated package names that may be installed (replaces the built-in list)
  WBC_PIP_ARGS             extra pip arguments, e.g. "--no-index --find-links /wheels"
  WBC_LOG_CAP_BYTES        size cap of submission_output.log, default 5000000"""


class Run:
    """One ingestion run's results so far: what the main thread, or the watchdog when time is up, writes out."""

    def __init__(self, output_dir, report):
        self.output_dir = output_dir
        self.report = report
        self.lock = threading.Lock()
        self.claimed = False
        self.stage = "starting"
        self.results = {}
        self.errors = []
        self.warnings = []
        self.batch_fallbacks = 0
        self.with_predictions = False  # predictions.csv is written once predicting has started
        self.set_times = {}
        self.output_before = None
        self.capture = None
        self.started = time.monotonic()

    def record(self, entry, label, probs):
        with self.lock:
            if not self.claimed:
                self.results[entry.set_name, entry.image_id] = (label, probs)

    def record_error(self, entry, message):
        with self.lock:
            if not self.claimed:
                self.errors.append({"set": entry.set_name, "image_id": entry.image_id, "error": message})

    def warn(self, message):
        self.warnings.append(message)

    def claim(self):
        """The first caller (main thread at the end, or the watchdog) gets to write the outputs."""
        with self.lock:
            if self.claimed:
                return False
            self.claimed = True
            return True

    def write(self, status, reason):
        """Stop the capture, then write predictions.csv (if predicting started) and run_report.json last."""
        if self.capture is not None:
            self.capture.stop()
        report = self.report
        now = time.monotonic()
        processed_total, seconds_total = 0, 0.0
        for set_name in SETS:
            stats = report["sets"][set_name]
            stats["predicted"] = sum(1 for key in self.results if key[0] == set_name)
            stats["errors"] = sum(1 for error in self.errors if error["set"] == set_name)
            start, end = self.set_times.get(set_name, (now, now))
            seconds = (end or now) - start
            # microseconds: scoring divides images by these, and a tiny set can take under a millisecond
            stats["seconds"] = round(seconds, 6)
            processed = stats["predicted"] + stats["errors"]
            stats["images_per_second"] = round(processed / seconds, 3) if seconds > 0 else 0.0
            processed_total += processed
            seconds_total += seconds
        if self.output_before is not None:
            report["unexpected_output_files"] = sorted(set(_files(self.output_dir)) - self.output_before
                                                       - {SUBMISSION_LOG})[:50]
            if report["unexpected_output_files"]:
                self.warn("the submission wrote into the output folder (overwritten or ignored): "
                          + ", ".join(report["unexpected_output_files"][:5]))
        peak, peak_children = run_report.peak_memory_mb()
        images = sum(report["sets"][s]["images"] for s in SETS)
        report.update(
            status=status, reason=reason, device=run_report.device(), peak_memory_mb=round(peak, 1),
            peak_memory_children_mb=round(peak_children, 1), errors=self.errors[:run_report.ERRORS_SHOWN],
            errors_total=len(self.errors), error_rate=round(len(self.errors) / images, 6) if images else None,
            images_per_second=round(processed_total / seconds_total, 3) if seconds_total > 0 else 0.0,
            warnings=self.warnings[:WARNINGS_SHOWN], batch_fallbacks=self.batch_fallbacks,
            total_seconds=round(now - self.started, 3), **run_report.environment())
        if self.capture is not None:
            report["submission_log"] = {"file": SUBMISSION_LOG, "bytes_printed": self.capture.total_bytes,
                                        "truncated": self.capture.truncated}
        report["predictions_written"] = self.with_predictions
        if self.with_predictions:
            report["probabilities"] = write_predictions(self.output_dir / PREDICTIONS, self.results)
        write_report(self.output_dir / RUN_REPORT, report)


def run(input_dir, output_dir, program_dir, submission, *, budget_seconds=DEFAULT_BUDGET_SECONDS,
        max_error_rate=DEFAULT_MAX_ERROR_RATE, batch_size=DEFAULT_BATCH_SIZE, workers=None,
        install_requirements=False, seed=0, log_cap_bytes=DEFAULT_LOG_CAP_BYTES, console=None):
    """Run the submission on input_dir/{pristine,degraded}.zip; write outputs to output_dir; return the report.

    When the time budget runs out the watchdog writes the outputs and ends the process (exit code 1).
    """
    input_dir, output_dir, program_dir, submission = (Path(p).resolve() for p in (input_dir, output_dir, program_dir, submission))
    console = console or open_console()
    workers = workers or default_workers()
    os.environ["PYTHONHASHSEED"] = str(seed)  # for any child process the model starts
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in (PREDICTIONS, RUN_REPORT, SUBMISSION_LOG):  # never leave a previous run's files behind
        (output_dir / name).unlink(missing_ok=True)
    report = {"status": None, "reason": None, "submission": str(submission), "device": "cpu", "peak_memory_mb": 0.0,
              "sets": {s: {"images": 0, "predicted": 0, "errors": 0, "seconds": 0.0, "images_per_second": 0.0}
                       for s in SETS},
              "errors": [], "budget_seconds": budget_seconds if budget_seconds and budget_seconds > 0 else None,
              "total_seconds": 0.0, "max_error_rate": max_error_rate, "batch_size": batch_size, "workers": workers,
              "seed": seed}
    state = Run(output_dir, report)

    def say(message):
        print(f"[ingestion] {message}", file=console, flush=True)

    def on_expiry():
        if not state.claim():
            return False
        done = len(state.results) + len(state.errors)
        total = sum(report["sets"][s]["images"] for s in SETS)
        reason = (f"time budget of {budget_seconds:g} s exceeded while {state.stage} "
                  f"({done} of {total} images done); the predictions made so far were written")
        state.write("failed", reason)
        say(f"failed: {reason}")
        console.flush()
        return True

    budget = TimeBudget(budget_seconds, on_expiry, EXIT_FAILED, started=state.started).start()
    unpacked = None
    cwd, sys_path = os.getcwd(), list(sys.path)
    try:
        state.stage = "checking the input data"
        if submission.is_file():
            unpacked = Path(tempfile.mkdtemp(prefix="wbc_submission_"))
            submission = unpack_zip(submission, unpacked)
        model_dir, note = find_model_dir(submission)
        report["model_dir"] = str(model_dir)
        if note:
            say(note)
            state.warn(note)
        check_no_reference([input_dir, program_dir, submission])
        if not input_dir.is_dir():
            raise InputDataError(f"input folder not found: {input_dir} (locally, `make bundle-data` builds the demo data)")
        entries = {s: list_images(input_dir / f"{s}.zip", s) for s in SETS}
        for set_name in SETS:
            report["sets"][set_name]["images"] = len(entries[set_name])
        say(f"{len(entries['pristine'])} pristine and {len(entries['degraded'])} degraded images; submission {model_dir}")

        state.stage = "checking requirements.txt"
        requirements = prepare_requirements(model_dir, install_requirements, budget, say)
        report["requirements"] = requirements

        state.stage = "loading the submission"
        state.output_before = set(_files(output_dir))
        state.capture = OutputCapture(output_dir / SUBMISSION_LOG, log_cap_bytes)
        state.capture.start()
        os.chdir(model_dir)  # relative paths in model.py resolve against its own folder
        sys.path.insert(0, str(model_dir))
        load_started = time.monotonic()
        module = import_model_module(model_dir / "model.py", requirements["entries"])
        seed_everything(seed)
        model, warnings = build_model(module)
        for warning in warnings:
            state.warn(warning)
        report["load_seconds"] = round(time.monotonic() - load_started, 3)
        seed_everything(seed)  # again, in case load() imported torch
        mode = "predict_batch" if callable(getattr(model, "predict_batch", None)) else "predict"
        report["prediction_mode"] = mode
        say(f"model loaded in {report['load_seconds']:.1f} s; predicting with {mode} "
            f"(batch size {batch_size}, {workers} decoding threads), device {run_report.device()}")

        state.with_predictions = True
        with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
            for set_name in SETS:
                state.stage = f"predicting the {set_name} set"
                predict_set(state, model, entries[set_name], input_dir / f"{set_name}.zip", batch_size, pool,
                            workers, console)
        status, reason = "ok", None
        total = sum(len(entries[s]) for s in SETS)
        if len(state.errors) > max_error_rate * total:
            first = state.errors[0]
            reason = (f"{len(state.errors)} of {total} images failed ({len(state.errors) / total:.2%}), more than the "
                      f"allowed {max_error_rate:.2%}; first: {first['set']}/{first['image_id']}: {first['error']}")
            status = "failed"
    except (SubmissionError, InputDataError, ReferenceExposedError) as exc:
        status, reason = "failed", str(exc)
        if getattr(exc, "traceback", None):
            report["traceback"] = exc.traceback
    except Exception as exc:  # a bug in ingestion itself: still leave a report, then show the traceback
        if state.claim():
            state.write("failed", f"internal error in the ingestion program while {state.stage}: "
                                  f"{describe_exception(exc)}")
        raise
    finally:
        os.chdir(cwd)
        sys.path[:] = sys_path
        budget.cancel()
        if unpacked is not None:
            shutil.rmtree(unpacked, ignore_errors=True)
    if not state.claim():
        threading.Event().wait()  # the watchdog is writing the outputs and will end the process
    state.write(status, reason)
    if report.get("traceback"):
        print(report["traceback"], file=console, end="")
    say(f"{status}: {reason}" if reason else summary(report, output_dir))
    return report


def predict_set(state, model, entries, zip_path, batch_size, pool, workers, console):
    """Predict one set while the pool's `workers` threads decode the following batches."""
    set_name = entries[0].set_name
    batched = callable(getattr(model, "predict_batch", None))
    reader = ZipReader(zip_path)
    state.set_times[set_name] = (time.monotonic(), None)
    try:
        with tqdm(total=len(entries), desc=f"{set_name:<9}", unit="img", file=console, mininterval=1.0) as bar:
            for batch in decoded_batches(reader, entries, batch_size, pool, 2 * workers, parts=workers):
                ready = []
                for entry, image, error in batch:
                    if error is None:
                        ready.append((entry, image))
                    else:
                        state.record_error(entry, error)
                if batched:
                    predict_with_batches(state, model, ready)
                else:
                    predict_each(state, model.predict, ready)
                bar.update(len(batch))
    finally:
        reader.close()
    state.set_times[set_name] = (state.set_times[set_name][0], time.monotonic())


def predict_each(state, predict, ready):
    """The per-image path: predict, check, record; an exception or junk output costs only that image."""
    for entry, image in ready:
        try:
            output = predict(image)
        except (Exception, SystemExit) as exc:
            state.record_error(entry, f"predict raised {describe_exception(exc)}")
            continue
        record_output(state, entry, output, "predict")


def record_output(state, entry, output, source):
    """Check one model output: a valid one becomes a prediction, junk a per-image error naming its source."""
    try:
        label, probs = normalise(output)
    except PredictionError as exc:
        state.record_error(entry, f"{source} returned {exc}")
        return
    state.record(entry, label, probs)


def predict_with_batches(state, model, ready):
    """predict_batch on the batch; when it raises or returns the wrong count, redo the batch with predict."""
    if not ready:
        return
    problem = None
    try:
        outputs = model.predict_batch([image for _, image in ready])
    except (Exception, SystemExit) as exc:
        problem = f"predict_batch raised {describe_exception(exc)}"
    else:
        try:
            outputs = list(outputs)
        except TypeError:
            problem = f"predict_batch returned a {type(outputs).__name__}, not a list"
        else:
            if len(outputs) != len(ready):
                problem = f"predict_batch returned {len(outputs)} predictions for {len(ready)} images"
    if problem is not None:
        state.batch_fallbacks += 1
        if callable(getattr(model, "predict", None)):
            state.warn(f"{problem}; that batch was predicted image by image with predict")
            predict_each(state, model.predict, ready)
        else:
            for entry, _ in ready:
                state.record_error(entry, f"{problem} (and Model has no predict to fall back on)")
        return
    for (entry, _), output in zip(ready, outputs):
        record_output(state, entry, output, "predict_batch")


def prepare_requirements(model_dir, install, budget, say):
    """Check the submission's requirements.txt and, when enabled, install the allowed missing packages."""
    path = model_dir / "requirements.txt"
    section = {"file": None, "install_enabled": install, "entries": []}
    if not path.is_file():
        return section
    section["file"] = path.name
    entries = section["entries"] = check_requirements(path)
    if install:
        install_missing(entries, timeout=budget.remaining(), log=say)
    else:
        for entry in entries:
            if entry["status"] == "missing":
                entry["detail"] = "not installed; installing is disabled (WBC_INSTALL_REQUIREMENTS)"
    counts = {}
    for entry in entries:
        counts.setdefault(entry["status"], []).append(entry["name"] or f"line {entry['line']}")
    say("requirements.txt: " + "; ".join(f"{status}: {', '.join(names)}" for status, names in counts.items()))
    return section


def seed_everything(seed):
    """Seed Python, NumPy and (when the submission uses it) torch, so reruns give identical predictions."""
    random.seed(seed)
    np.random.seed(seed)
    torch = run_report.torch_module()
    if torch is not None:
        torch.manual_seed(seed)  # seeds every CUDA device too


def summary(report, output_dir):
    sets = report["sets"]
    return (f"ok: {sets['pristine']['predicted']} pristine + {sets['degraded']['predicted']} degraded predictions, "
            f"{report['errors_total']} errors, {report['images_per_second']:.1f} images/s "
            f"-> {output_dir / PREDICTIONS}")


def default_workers():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores))


def _files(folder):
    return [str(path.relative_to(folder)) for path in Path(folder).rglob("*") if path.is_file()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=ENVIRONMENT,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("input_data", "output", "program", "submission"):
        parser.add_argument(name, nargs="?", help="CodaBench positional argument (give all four or none)")
    parser.add_argument("--phase", default="eval", help="local run: which input_data/<phase> to use (default eval)")
    parser.add_argument("--submission", dest="submission_option", metavar="PATH",
                        help="submission folder or zip (default: the starting kit)")
    parser.add_argument("--budget-seconds", type=float, help="time budget in seconds (0: none)")
    parser.add_argument("--max-error-rate", type=float, help="fail over this fraction of failed images")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--workers", type=int, help="JPEG decoding threads")
    parser.add_argument("--install-requirements", action="store_true", default=None,
                        help="pip-install allowed missing packages from the submission's requirements.txt")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    positional = [args.input_data, args.output, args.program, args.submission]
    if any(positional) and not all(positional):
        parser.error("give all four positional arguments (INPUT_DATA OUTPUT PROGRAM SUBMISSION) or none")
    if not any(positional):
        args.input_data, args.output = REPO / "input_data" / args.phase, REPO / "output" / "res"
        args.program, args.submission = PROGRAM_DIR, REPO / "starting_kit"
    if args.submission_option:
        args.submission = args.submission_option
    for option, variable, kind, default in (
            ("budget_seconds", "WBC_TIME_BUDGET_SECONDS", float, DEFAULT_BUDGET_SECONDS),
            ("max_error_rate", "WBC_MAX_ERROR_RATE", float, DEFAULT_MAX_ERROR_RATE),
            ("batch_size", "WBC_BATCH_SIZE", int, DEFAULT_BATCH_SIZE),
            ("workers", "WBC_WORKERS", int, None),
            ("log_cap_bytes", "WBC_LOG_CAP_BYTES", int, DEFAULT_LOG_CAP_BYTES)):
        if getattr(args, option, None) is None:
            value = os.environ.get(variable)
            try:
                setattr(args, option, kind(value) if value else default)
            except ValueError:
                parser.error(f"{variable}={value!r} is not a valid {kind.__name__}")
    if args.install_requirements is None:
        args.install_requirements = os.environ.get("WBC_INSTALL_REQUIREMENTS", "0").lower() in ("1", "true", "yes")
    if args.batch_size < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--batch-size and --workers must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    report = run(args.input_data, args.output, args.program, args.submission, budget_seconds=args.budget_seconds,
                 max_error_rate=args.max_error_rate, batch_size=args.batch_size, workers=args.workers,
                 install_requirements=args.install_requirements, seed=args.seed, log_cap_bytes=args.log_cap_bytes)
    return EXIT_OK if report["status"] == "ok" else EXIT_FAILED


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for threads the submission may have left running
