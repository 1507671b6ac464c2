"""Parse and validate predictions.csv once, against the reference, into clean aligned arrays.

Accepted on purpose (normalised, never an error):
- a UTF-8 byte-order mark and CRLF (Windows) line ends;
- surrounding spaces in any field, label case (" sne " -> "SNE") and set case (" Degraded" ->
  "degraded"): the meaning is unambiguous, so the file is scored as if written canonically.
Everything else that is not exactly the contract raises SubmissionOutputError with the count and the
first few offending image_ids. Columns may come in any order; image_ids are compared exactly
(after stripping spaces).

Missing images are an error, except those the run report accounts for: when ingestion accepted a
run in which predict() failed on a few images (below its error-rate limit), exactly those images
(per set count equal to sets.<set>.errors, and every image_id listed in errors[]: all of them when the
report says its list is complete, else the first ones it lists) are NO_PREDICTION, which classification_metrics.py
scores as a wrong answer.
"""
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from label_space import CLASSES, NO_PREDICTION, PROB_COLUMNS, SETS
from scoring_errors import SubmissionOutputError, examples

REQUIRED_COLUMNS = ("image_id", "set", "label")
HEADER_HELP = "image_id,set,label (optionally followed by prob_BA,...,prob_VLY)"
MISSING_LABELS = {"", "NAN", "NA", "NONE", "NULL"}
# ingestion writes probabilities with %.6f, so 13 rounded values may miss 1 by ~7e-6.
PROB_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class PredictFailures:
    """Images whose predict() failed in a run the ingestion accepted, as its run report gives them."""

    per_set: dict[str, int]  # sets.<set>.errors
    listed: frozenset[str]  # image_ids in errors[]
    complete: bool = True  # whether errors[] lists them all (the report's own cap, errors_shown, was not reached)


NO_FAILURES = PredictFailures({name: 0 for name in SETS}, frozenset())


@dataclass(frozen=True)
class AlignedPredictions:
    """Reference and predictions row by row (reference order); codes index label_space.CLASSES."""

    image_id: np.ndarray  # (n,) str
    set: np.ndarray  # (n,) str, "pristine" | "degraded"
    severity: np.ndarray  # (n,) str
    y_true: np.ndarray  # (n,) int64
    y_pred: np.ndarray  # (n,) int64, NO_PREDICTION for images whose predict() failed
    probs: np.ndarray | None  # (n, 13) float64 rows rescaled to sum 1 (NaN rows where no prediction), or None
    normalised_labels: int  # rows whose label or set needed case/space normalisation
    unpredicted: int  # images scored as NO_PREDICTION


def read_predictions(
    path: Path, reference: pd.DataFrame, failures: PredictFailures = NO_FAILURES
) -> AlignedPredictions:
    """Validate the predictions file at `path` against `reference` (see reference_file.read_reference)."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise SubmissionOutputError(
            f"{name} not found in {path.parent}: the ingestion program did not write predictions; see its log"
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SubmissionOutputError(f"{name} is not UTF-8 text (byte {err.start} cannot be decoded)") from None
    if not text.strip():
        raise SubmissionOutputError(f"{name} is empty: expected the header {HEADER_HELP} and one row per image")
    columns = _check_header(name, text)
    table = _read_rows(name, text, columns)
    predicted = _check_ids(name, table["image_id"], reference, failures)
    scored = reference.loc[predicted]
    table = table.set_index("image_id").loc[scored["image_id"]].reset_index()  # reference order
    sets = _check_sets(name, table, scored)
    labels = _check_labels(name, table)

    # Back to every reference row: unpredicted rows get NO_PREDICTION and NaN probabilities.
    y_pred = np.full(len(reference), NO_PREDICTION, dtype=np.int64)
    y_pred[predicted] = pd.Categorical(labels, categories=CLASSES).codes
    probs = None
    if PROB_COLUMNS[0] in columns:
        probs = np.full((len(reference), len(PROB_COLUMNS)), np.nan)
        probs[predicted] = _probabilities(name, table)
    return AlignedPredictions(
        image_id=reference["image_id"].to_numpy(dtype=str),
        set=reference["set"].to_numpy(dtype=str),
        severity=reference["severity"].to_numpy(dtype=str),
        y_true=reference["label_code"].to_numpy(dtype=np.int64),
        y_pred=y_pred,
        probs=probs,
        normalised_labels=int(((labels != table["label"]) | (sets != table["set"])).sum()),
        unpredicted=int((~predicted).sum()),
    )


def _check_ids(name: str, ids: pd.Series, reference: pd.DataFrame, failures: PredictFailures) -> np.ndarray:
    """Which reference rows have a prediction; ids must be unique, known, and complete up to `failures`."""
    if (ids == "").any():
        raise SubmissionOutputError(f"{name}: {int((ids == '').sum())} row(s) have an empty image_id")
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise SubmissionOutputError(
            f"{name} has {len(duplicated)} duplicated image_id(s), e.g. {examples(duplicated)}: "
            "predict each image once"
        )
    known = ids.isin(reference["image_id"])
    if not known.any():
        raise SubmissionOutputError(
            f"none of the {len(ids)} image_ids in {name} is in this phase's reference ({len(reference)} images): "
            "these predictions are from another phase or another input; run the ingestion on this phase's data"
        )
    if not known.all():
        raise SubmissionOutputError(
            f"{name} has {int((~known).sum())} image_id(s) that are not in the reference, "
            f"e.g. {examples(ids[~known])}"
        )
    predicted = reference["image_id"].isin(ids).to_numpy()
    missing = reference.loc[~predicted]
    if len(missing) and not _accounted_for(missing, failures):
        reported = sum(failures.per_set.values())
        raise SubmissionOutputError(
            f"{name} is missing {len(missing)} of the {len(reference)} reference images, "
            f"e.g. {examples(missing['image_id'])}: every image of both sets needs a prediction"
            + (f" (run_report.json accounts for {reported} failed predictions only)" if reported else "")
        )
    return predicted


def _check_sets(name: str, table: pd.DataFrame, scored: pd.DataFrame) -> pd.Series:
    """The normalised (stripped, lower-case) set column; each value must be a set name and match the reference's."""
    sets = table["set"].str.strip().str.lower().astype(object)
    unknown = ~sets.isin(SETS)
    if unknown.any():
        first = int(np.flatnonzero(unknown.to_numpy())[0])
        raise SubmissionOutputError(
            f"{name}: {int(unknown.sum())} row(s) have an unknown set '{table['set'].iloc[first]}' "
            f"(image_id {table['image_id'].iloc[first]}); allowed: {', '.join(SETS)}"
        )
    wrong = sets.to_numpy() != scored["set"].to_numpy()
    if wrong.any():
        first = int(np.flatnonzero(wrong)[0])
        raise SubmissionOutputError(
            f"{name}: {int(wrong.sum())} image_id(s) are in the wrong set, e.g. {table['image_id'].iloc[first]} "
            f"(predictions: {sets.iloc[first]}, reference: {scored['set'].iloc[first]})"
        )
    return sets


def _check_labels(name: str, table: pd.DataFrame) -> pd.Series:
    """The normalised (stripped, upper-case) label column; every label must be one of CLASSES."""
    labels = table["label"].str.strip().str.upper().astype(object)
    no_label = labels.isin(MISSING_LABELS)
    if no_label.any():
        raise SubmissionOutputError(
            f"{name}: {int(no_label.sum())} row(s) have no label (empty or NaN), "
            f"e.g. image_id {examples(table['image_id'][no_label])}"
        )
    unknown = ~labels.isin(CLASSES)
    if unknown.any():
        raise SubmissionOutputError(
            f"{name}: {int(unknown.sum())} row(s) have an unknown label, "
            f"e.g. {examples(repr(v) for v in sorted(table['label'][unknown].unique()))} "
            f"(image_id {examples(table['image_id'][unknown], 3)}); allowed labels: {', '.join(CLASSES)}"
        )
    return labels


def _accounted_for(missing: pd.DataFrame, failures: PredictFailures) -> bool:
    """Whether the missing reference rows are exactly the run report's failed predictions."""
    counts = missing["set"].value_counts()
    missing_ids = set(missing["image_id"])
    return (all(int(counts.get(name, 0)) == failures.per_set.get(name, 0) for name in SETS)
            and (failures.listed == missing_ids if failures.complete else failures.listed <= missing_ids))


def _check_header(name: str, text: str) -> list[str]:
    """The header's column names; it must hold the three required columns and all or none of the 13 probs."""
    first_line = text.splitlines()[0]
    columns = [c.strip() for c in next(csv.reader([first_line]))]
    if not set(REQUIRED_COLUMNS) <= set(columns):
        raise SubmissionOutputError(f"{name}: the first line must be the header {HEADER_HELP}, found '{first_line}'")
    unexpected = [c for c in columns if c not in REQUIRED_COLUMNS + PROB_COLUMNS]
    if unexpected:
        raise SubmissionOutputError(
            f"{name}: unexpected column(s) {', '.join(unexpected)} in the header; allowed: image_id, set, label "
            f"and the probability columns {', '.join(PROB_COLUMNS)}"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise SubmissionOutputError(f"{name}: column(s) {', '.join(repeated)} appear more than once in the header")
    absent = [c for c in PROB_COLUMNS if c not in columns]
    if len(absent) not in (0, len(PROB_COLUMNS)):
        raise SubmissionOutputError(
            f"{name}: probability columns must be all 13 of prob_BA..prob_VLY or none; missing: {', '.join(absent)}"
        )
    return columns


def _read_rows(name: str, text: str, columns: list[str]) -> pd.DataFrame:
    """Text fields as strings, image_id stripped (missing trailing fields become empty strings).

    set and label stay as written: _check_sets and _check_labels normalise them and count the rows they changed.
    """
    try:
        # Text columns as object (fast hashing); probability columns parse as float64 when clean.
        table = pd.read_csv(io.StringIO(text), dtype={c: object for c in REQUIRED_COLUMNS}, keep_default_na=False,
                            header=0, names=columns)
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if found:
            expected, line, saw = found.groups()
            raise SubmissionOutputError(f"{name} line {line}: expected {expected} fields, saw {saw}") from None
        raise SubmissionOutputError(f"{name} cannot be parsed as CSV: {err}") from None
    if table.empty:
        raise SubmissionOutputError(f"{name} has a header but no rows: expected one row per image")
    if not isinstance(table.index, pd.RangeIndex):
        # pandas silently takes the surplus leading fields of a too-long first row as row labels
        # (then every column is shifted); name that row as the ParserError above names later ones.
        reader = csv.reader(io.StringIO(text))
        next(reader)
        fields = next(row for row in reader if row)
        raise SubmissionOutputError(f"{name} line {reader.line_num}: expected {len(columns)} fields, saw {len(fields)}")
    for column in REQUIRED_COLUMNS:  # object dtype: pandas' Arrow strings make isin ~20x slower
        table[column] = table[column].fillna("").astype(object)
    table["image_id"] = table["image_id"].str.strip().astype(object)
    return table


def _probabilities(name: str, table: pd.DataFrame) -> np.ndarray:
    """The (n, 13) probability matrix in CLASSES order: finite, non-negative, rows summing to 1."""
    raw = table[list(PROB_COLUMNS)]
    probs = raw.apply(
        lambda column: column if pd.api.types.is_float_dtype(column)
        else pd.to_numeric(column.astype(str).str.strip(), errors="coerce")
    ).to_numpy(dtype=np.float64)

    def first_cell(mask):
        row, col = np.argwhere(mask)[0]
        return f"{PROB_COLUMNS[col]} of image_id {table['image_id'].iloc[row]} ('{raw.iat[row, col]}')"

    not_number = ~np.isfinite(probs)
    if not_number.any():
        raise SubmissionOutputError(
            f"{name}: {int(not_number.sum())} probability value(s) are not finite numbers (empty, NaN, inf or text), "
            f"e.g. {first_cell(not_number)}"
        )
    negative = probs < 0
    if negative.any():
        raise SubmissionOutputError(
            f"{name}: {int(negative.sum())} probability value(s) are negative, e.g. {first_cell(negative)}"
        )
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise SubmissionOutputError(
            f"{name}: the probabilities of {int(off.sum())} row(s) do not sum to 1 (tolerance {PROB_SUM_TOLERANCE}), "
            f"e.g. image_id {table['image_id'].iloc[first]} sums to {sums[first]:.6f}"
        )
    # Within tolerance: rescale so that the metrics see exact probability vectors.
    return probs / sums[:, None]
