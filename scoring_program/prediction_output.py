"""Read a prediction step's output as the scorer scores it: the run report, then the predictions and the speed.

The steps, in order: refuse a step in which the submission's own program ran, read the run report (a failed run is
refused), read the predictions against the reference with the predict() failures the report accepted (each is
NO_PREDICTION, which the figures score as a wrong answer), then the speed from the worker's clock when its `metadata`
file is there. score.py reads every output this way, and so do the organizer tools that compare outputs
(tools/compare.py, rank.py, ranking_report.py): what they compare is what the scorer scores.
"""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from prediction_file import NO_FAILURES, AlignedPredictions, read_predictions
from report_reader import (check_submission_program, load_run_report, predict_failures, read_worker_metadata,
                           scored_speed, worker_elapsed_seconds)
from run_report import RunReport
from scoring_errors import SubmissionOutputError

PREDICTIONS = "predictions.csv"
RUN_REPORT = "run_report.json"
WORKER_METADATA = "metadata"  # written by CodaBench's worker into the prediction output


@dataclass(frozen=True)
class PredictionOutput:
    """One prediction step's output, validated: its run report, its predictions aligned with the reference, and the
    images per second the leaderboard gives it."""

    folder: Path
    report: RunReport
    table: AlignedPredictions
    images_per_second: float


def read_run_report(folder: Path) -> RunReport | None:
    """Refuse a step in which the submission's own program ran, then read the step's run report (None when absent).

    In that order: a report such a program could have rewritten is never read.
    """
    check_submission_program(read_worker_metadata(Path(folder) / WORKER_METADATA))
    return load_run_report(Path(folder) / RUN_REPORT)


def read_prediction_output(folder: Path, report: RunReport | None, reference: pd.DataFrame,
                           predictions: Path | None = None) -> PredictionOutput:
    """The step's predictions and speed, once its run report is read (read_run_report): predictions is a file read
    in place of <folder>/predictions.csv. Raises SubmissionOutputError."""
    folder = Path(folder)
    predictions = Path(predictions or folder / PREDICTIONS)
    if report is None and predictions.is_file():  # with neither, the missing predictions are reported
        raise SubmissionOutputError(
            f"{RUN_REPORT} not found in {folder}: the ingestion program did not finish "
            "(it writes the report last, also when it fails), so the predictions cannot be trusted"
        )
    table = read_predictions(predictions, reference, predict_failures(report) if report else NO_FAILURES)
    worker_seconds = worker_elapsed_seconds(read_worker_metadata(folder / WORKER_METADATA), report)
    return PredictionOutput(folder, report, table, scored_speed(report, len(reference), worker_seconds))
