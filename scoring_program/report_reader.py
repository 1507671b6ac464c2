"""Read the ingestion's run_report.json: fail on a failed run; give its accepted predict failures and speed."""
import json
import math
from pathlib import Path

from label_space import SETS
from prediction_file import PredictFailures
from scoring_errors import SubmissionError


def load_run_report(path: Path) -> dict | None:
    """The parsed report, or None when the file is absent; raises SubmissionError when the run failed.

    A failed run (time budget, too many predict errors, ...) may leave a partial predictions file, so
    its reason is reported instead of a list of missing ids.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SubmissionError(f"{path.name} is not valid JSON ({err}); it must be the ingestion's own report") from None
    status = report.get("status") if isinstance(report, dict) else None
    if status == "failed":
        raise SubmissionError(f"the ingestion run failed: {report.get('reason') or 'no reason given'} ({path.name})")
    if status != "ok":
        raise SubmissionError(f"{path.name} has status {status!r}; expected 'ok' or 'failed'")
    return report


def predict_failures(report: dict, name: str = "run_report.json") -> PredictFailures:
    """The images whose predict() failed in this (accepted) run: per-set counts and the listed ids."""
    try:
        per_set = {s: int(report["sets"][s].get("errors", 0)) for s in SETS}
        listed = frozenset(str(e["image_id"]) for e in report.get("errors") or [])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SubmissionError(
            f"{name} has malformed sets.<set>.errors or errors[] ({type(err).__name__}: {err})"
        ) from None
    return PredictFailures(per_set, listed)


def images_per_second(report: dict, name: str = "run_report.json") -> float:
    """Total images over both sets divided by their total prediction seconds."""
    try:
        images = sum(int(report["sets"][s]["images"]) for s in SETS)
        seconds = sum(float(report["sets"][s]["seconds"]) for s in SETS)
    except (KeyError, TypeError, ValueError) as err:
        raise SubmissionError(
            f"{name} lacks sets.<pristine|degraded>.images/seconds ({type(err).__name__}: {err})"
        ) from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise SubmissionError(f"{name} gives {seconds} prediction seconds in total; expected a positive number")
    return images / seconds
