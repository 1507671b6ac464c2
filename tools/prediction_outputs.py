"""Read a submission's prediction-step output (predictions.csv + run_report.json) with the scorer's own checks.

For the organizer tools that compare submissions (compare.py, rank.py, ranking_report.py): what they compare is what
score.py scores, accepted predict() failures included, which count as "no prediction" (wrong). The steps are
score.py's (score_run): refuse a step in which the submission's own program ran, read the run report (a failed run
or a missing report is refused), read the predictions against the reference with the report's failures, then the
speed from the worker's clock when its `metadata` file is there.
"""
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.append(str(Path(__file__).resolve().parents[1] / "scoring_program"))
from prediction_file import AlignedPredictions, read_predictions  # noqa: E402
from report_reader import (check_submission_program, images_per_second, load_run_report,  # noqa: E402
                           predict_failures, read_worker_metadata, worker_elapsed_seconds)
from scoring_errors import ScoringError, SubmissionOutputError  # noqa: E402

PREDICTIONS = "predictions.csv"
RUN_REPORT = "run_report.json"
WORKER_METADATA = "metadata"  # written by CodaBench's worker into the prediction output


@dataclass(frozen=True)
class PredictionOutput:
    """One submission's validated predictions and the speed the scorer would give it."""

    folder: Path
    table: AlignedPredictions
    images_per_second: float


def read_output(path: Path, reference: pd.DataFrame) -> PredictionOutput:
    """The output folder at `path` (or its predictions file, read in place of predictions.csv) against `reference`.

    Raises the scorer's error, prefixed with `path`: several submissions' files are all called predictions.csv.
    """
    path = Path(path)
    folder, predictions = (path, path / PREDICTIONS) if path.is_dir() else (path.parent, path)
    try:
        metadata = read_worker_metadata(folder / WORKER_METADATA)
        check_submission_program(metadata)
        report = load_run_report(folder / RUN_REPORT)
        if report is None:
            raise SubmissionOutputError(f"{RUN_REPORT} not found in {folder}: give the whole output of the "
                                        "prediction step (predictions.csv with its run report), as the scorer reads it")
        table = read_predictions(predictions, reference, predict_failures(report))
        speed = images_per_second(report, len(reference), worker_elapsed_seconds(metadata, report))
    except ScoringError as err:
        raise type(err)(f"{path}: {err}") from None
    return PredictionOutput(folder, table, speed)
