"""Read the ingestion's run_report.json: fail on a failed run; give its accepted predict failures and speed."""
import json
import math
from pathlib import Path

from label_space import SETS
from prediction_file import PredictFailures
from run_report import RunReport, images_per_second as throughput
from scoring_errors import SubmissionOutputError


def load_run_report(path: Path) -> RunReport | None:
    """The parsed report, or None when the file is absent; raises SubmissionOutputError when the run failed.

    A failed run (time budget, too many predict errors, ...) may leave a partial predictions file, so
    its reason is reported instead of a list of missing ids.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SubmissionOutputError(f"{path.name} is not valid JSON ({err}); it must be the ingestion's own report"
                                    ) from None
    status = report.get("status") if isinstance(report, dict) else None
    if status == "failed":
        raise SubmissionOutputError(
            f"the ingestion run failed: {report.get('reason') or 'no reason given'} ({path.name})")
    if status != "ok":
        raise SubmissionOutputError(f"{path.name} has status {status!r}; expected 'ok' or 'failed'")
    try:
        return RunReport.from_dict(report)
    except (TypeError, AttributeError) as err:
        raise SubmissionOutputError(f"{path.name} does not have the run report's layout ({type(err).__name__}: {err})"
                              ) from None


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


def worker_elapsed_seconds(path: Path) -> float | None:
    """ingestionElapsedTime from the `metadata` file CodaBench's worker writes into the prediction output once the
    prediction step's container has stopped (yaml.dump of a flat dict: `key: value` lines), or None when absent.

    The one clock a submission cannot touch; it covers the whole step (start-up and model loading included).
    """
    path = Path(path)
    if not path.is_file():
        return None
    fields = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    value = fields.get("ingestionElapsedTime")
    if value in (None, "", "null", "~"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise SubmissionOutputError(f"the worker's {path.name} file gives ingestionElapsedTime {value!r}; expected a "
                              "positive number of seconds")
    return seconds


def images_per_second(report: RunReport, images: int, worker_seconds: float | None = None,
                      name: str = "run_report.json") -> float:
    """Reference images (both sets) per second: over the worker's elapsed time when known (CodaBench: whole-step
    throughput), else over the run report's prediction seconds (the ingestion supervisor's own clock)."""
    seconds = set_seconds(report, name)
    return throughput(images, worker_seconds if worker_seconds is not None else seconds)
