"""Read the ingestion's run_report.json and the worker's metadata file: fail on a failed or overrun run, or on a
prediction step in which the submission's own program ran; give the accepted predict failures and speed."""
import json
import math
from pathlib import Path

from label_space import SETS
from prediction_file import PredictFailures
from run_report import RunReport, clean_text, throughput
from scoring_errors import SubmissionOutputError

MAX_REPORT_BYTES = 16 * 2**20  # far above any report the ingestion writes (its texts and lists are capped)
# Seconds of the prediction step outside the supervisor's own clock: the container's and the interpreter's start, the
# supervisor's final stop of the model and its writes.
WORKER_ALLOWANCE_SECONDS = 30
NULLS = ("", "null", "~")


def load_run_report(path: Path) -> RunReport | None:
    """The parsed report, or None when the file is absent; raises SubmissionOutputError when the run failed, overran
    its budget, or the file is not a report the ingestion wrote (too large, not JSON, another layout, inconsistent).

    A failed run (time budget, too many predict errors, ...) may leave a partial predictions file, so
    its reason is reported instead of a list of missing ids.
    """
    path = Path(path)
    if not path.is_file():
        return None
    size = path.stat().st_size
    if size > MAX_REPORT_BYTES:
        raise SubmissionOutputError(f"{path.name} is {size:,} bytes, more than any report of the ingestion "
                                    f"({MAX_REPORT_BYTES:,} at most); it must be the ingestion's own report")
    try:
        report = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise SubmissionOutputError(f"{path.name} is not valid JSON ({err}); it must be the ingestion's own report"
                                    ) from None
    status = report.get("status") if isinstance(report, dict) else None
    if status == "failed":
        reason = clean_text(str(report.get("reason") or "no reason given"))
        raise SubmissionOutputError(f"the ingestion run failed: {reason} ({path.name})")
    if status != "ok":
        raise SubmissionOutputError(f"{path.name} has status {clean_text(repr(status), 80)}; expected 'ok' or "
                                    "'failed'")
    try:
        record = RunReport.from_dict(report)
    except (TypeError, AttributeError, ValueError) as err:
        raise SubmissionOutputError(f"{path.name} does not have the run report's layout ({type(err).__name__}: "
                                    f"{clean_text(str(err), 200)})") from None
    check_consistent(record, path.name)
    return record


def check_consistent(report: RunReport, name: str = "run_report.json") -> None:
    """An accepted run holds together as the supervisor judges it: its error rate is within the rate it allowed, and
    it loaded and predicted within the budget it records, on the supervisor's own clock. A report saying otherwise is
    of a run that failed (the supervisor fails such a run itself, unless it was frozen while the time ran)."""
    rate, allowed = report.error_rate, report.max_error_rate
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in (rate, allowed)) \
            and rate > allowed + 1e-6:  # the report rounds the rate to 6 decimals
        raise SubmissionOutputError(f"{name} is inconsistent: status 'ok' with an error rate of {rate:.2%}, above the "
                                    f"{allowed:.2%} it allows; the ingestion's own report never is")
    budget = _seconds_or_none(report.budget_seconds, f"{name} budget_seconds")
    if budget is None:
        return
    spent = (_seconds_or_none(report.load_seconds, f"{name} load_seconds") or 0.0) + set_seconds(report, name)
    if spent > budget + 0.01:  # the report rounds each figure
        raise SubmissionOutputError(f"{name} says loading and predicting took {spent:.1f} s, more than the run's time "
                                    f"budget of {budget:g} s: a run that overran its budget is not scored (was the "
                                    "ingestion program stopped while it ran?)")


def _seconds_or_none(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise SubmissionOutputError(f"{where} is {clean_text(repr(value), 80)}; expected a finite number of seconds "
                                    ">= 0 or null")
    return float(value)


def predict_failures(report: RunReport, name: str = "run_report.json") -> PredictFailures:
    """The images whose predict() failed in this (accepted) run: per-set counts and the listed ids."""
    try:
        per_set = {s: int(report.sets[s].errors) for s in SETS}
        listed = frozenset(str(e["image_id"]) for e in report.errors or [])
        complete = report.errors_complete
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SubmissionOutputError(
            f"{name} has malformed sets.<set>.errors, errors[] or errors_shown ({type(err).__name__}: {err})"
        ) from None
    return PredictFailures(per_set, listed, complete)


def set_seconds(report: RunReport, name: str = "run_report.json") -> float:
    """Total prediction seconds over both sets; each must be a finite number >= 0 and the total positive."""
    total = 0.0
    for set_name in SETS:
        try:
            value = report.sets[set_name].seconds
            seconds = float(value)
        except (KeyError, TypeError, ValueError) as err:
            raise SubmissionOutputError(
                f"{name} lacks sets.<pristine|degraded>.images/seconds ({type(err).__name__}: {err})"
            ) from None
        if isinstance(value, bool) or not (math.isfinite(seconds) and seconds >= 0):
            raise SubmissionOutputError(f"{name} gives sets.{set_name}.seconds = {value!r}; expected a finite number "
                                        ">= 0 (the ingestion's own clock never gives anything else)")
        total += seconds
    if total <= 0:
        raise SubmissionOutputError(f"{name} gives {total} prediction seconds in total; expected a positive number")
    return total


def read_worker_metadata(path: Path) -> dict[str, str | None] | None:
    """The fields of the `metadata` file CodaBench's worker writes into the prediction output once the step's
    containers have stopped (yaml.dump of a flat dict: `key: value` lines), or None when absent (a local run).
    `null`, `~` and an empty value read as None."""
    path = Path(path)
    if not path.is_file():
        return None
    fields = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = None if value.strip() in NULLS else value.strip()
    return fields


def check_submission_program(metadata: dict | None, name: str = "metadata") -> None:
    """Refuse a prediction step in which the submission's own program ran beside the ingestion program.

    CodaBench's worker runs a submission whose own `metadata` file has a `command` in a second container of the
    prediction step, writing the same output folder (compute_worker.py, _run_program_directory), and records that
    program's exit code and elapsed time as exitCode and elapsedTime (push_output); when none ran, exitCode is null
    and elapsedTime is the ingestion's. Such a program can rewrite the supervisor's outputs after it wrote them, so
    nothing of the step can be trusted.
    """
    if metadata is None:
        return
    exit_code, elapsed = metadata.get("exitCode"), metadata.get("elapsedTime")
    if exit_code is not None or elapsed not in (None, metadata.get("ingestionElapsedTime")):
        raise SubmissionOutputError(
            f"the worker's {name} file shows that the submission's own program ran beside the ingestion program "
            f"(exitCode {clean_text(str(exit_code), 40)}, elapsedTime {clean_text(str(elapsed), 40)}): a submission "
            "whose metadata file has a `command` runs in a second container that can rewrite the prediction step's "
            "outputs, so they are not scored; leave `command` out of your submission's metadata file")


def worker_elapsed_seconds(metadata: dict | None, report: RunReport | None = None,
                           name: str = "metadata") -> float | None:
    """ingestionElapsedTime from the worker's metadata fields (read_worker_metadata), or None when absent.

    The one clock a submission cannot touch; it covers the whole step (start-up and model loading included). A step
    longer than the report's budget by more than WORKER_ALLOWANCE_SECONDS overran it, whatever the report says.
    """
    value = (metadata or {}).get("ingestionElapsedTime")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise SubmissionOutputError(f"the worker's {name} file gives ingestionElapsedTime "
                                    f"{clean_text(repr(value), 80)}; expected a positive number of seconds")
    budget = report.budget_seconds if report is not None else None
    if isinstance(budget, (int, float)) and seconds > budget + WORKER_ALLOWANCE_SECONDS:
        raise SubmissionOutputError(f"the worker's {name} file gives ingestionElapsedTime {seconds:g} s, more than "
                                    f"the run's time budget of {budget:g} s (run_report.json) and the "
                                    f"{WORKER_ALLOWANCE_SECONDS} s its start and end may add: the run overran its "
                                    "budget, so it is not scored")
    return seconds


def scored_speed(report: RunReport, images: int, worker_seconds: float | None = None,
                 name: str = "run_report.json") -> float:
    """The leaderboard's images_per_second: reference images (both sets) per second over the worker's elapsed time
    when known (CodaBench: whole-step throughput), else over the run report's prediction seconds (the ingestion
    supervisor's own clock)."""
    seconds = set_seconds(report, name)
    return throughput(images, worker_seconds if worker_seconds is not None else seconds)
