"""Read and check the hidden reference.csv; any defect is an organizer error naming the file and row."""
from pathlib import Path

import numpy as np
import pandas as pd

from label_space import CLASSES, SETS, SEVERITIES
from scoring_errors import ReferenceDataError

REQUIRED_COLUMNS = ("image_id", "set", "label", "severity", "cell_id")


def read_reference(path: Path) -> pd.DataFrame:
    """Return the reference as a DataFrame with image_id, set, label, severity, cell_id, label_code.

    cell_id names each image's source cell, and each cell is scored once per phase: a cell in both sets, or twice
    in one, would let a model answer an image from its memory of the other (pages/data.md). Every severity must
    occur in the degraded set and both sets must be non-empty, since each is a leaderboard column.
    """
    path = Path(path)
    ref = _read_table(path)
    _check_rows(path, ref)
    _check_coverage(path, ref)
    ref["label_code"] = pd.Categorical(ref["label"], categories=CLASSES).codes.astype(np.int64)
    return ref[["image_id", "set", "label", "severity", "cell_id", "label_code"]].reset_index(drop=True)


def _read_table(path: Path) -> pd.DataFrame:
    """The CSV as stripped strings, with the required columns and at least one row."""
    if not path.is_file():
        raise ReferenceDataError(f"{path} not found: the reference data folder must contain reference.csv")
    try:
        ref = pd.read_csv(path, dtype=object, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ReferenceDataError(f"{path} cannot be read as CSV: {err}") from None
    if not isinstance(ref.index, pd.RangeIndex):  # pandas took a too-long first row's surplus fields as row labels
        raise ReferenceDataError(f"{path}: the first data row has more fields than the header")
    ref.columns = [c.strip() for c in ref.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in ref.columns]
    if missing:
        raise ReferenceDataError(f"{path} lacks column(s) {', '.join(missing)}; found {', '.join(ref.columns)}")
    if ref.empty:
        raise ReferenceDataError(f"{path} has no rows")
    ref = ref.fillna("")
    for column in ("image_id", "set", "label", "severity", "cell_id"):
        ref[column] = ref[column].astype(str).str.strip().astype(object)
    return ref


def _check_rows(path: Path, ref: pd.DataFrame) -> None:
    """Every row's values: the first offending row (its line) and how many there are, one rule at a time."""

    def bad_row(mask, what):
        first = int(np.flatnonzero(mask.to_numpy())[0])
        row = ref.iloc[first]
        raise ReferenceDataError(
            f"{path} line {first + 2} (image_id '{row['image_id']}'): {what(row)}; {int(mask.sum())} such row(s)"
        )

    if (ref["image_id"] == "").any():
        bad_row(ref["image_id"] == "", lambda r: "empty image_id")
    if ref["image_id"].duplicated().any():
        bad_row(ref["image_id"].duplicated(), lambda r: "duplicated image_id")
    if (~ref["set"].isin(SETS)).any():
        bad_row(~ref["set"].isin(SETS), lambda r: f"set '{r['set']}' is not one of {', '.join(SETS)}")
    if (~ref["label"].isin(CLASSES)).any():
        bad_row(~ref["label"].isin(CLASSES), lambda r: f"label '{r['label']}' is not one of {', '.join(CLASSES)}")
    if (~ref["severity"].isin(SEVERITIES)).any():
        bad_row(~ref["severity"].isin(SEVERITIES),
                lambda r: f"severity '{r['severity']}' is not one of {', '.join(SEVERITIES)}")
    pristine_set = ref["set"] == "pristine"
    if (pristine_set & (ref["severity"] != "pristine")).any():
        bad_row(pristine_set & (ref["severity"] != "pristine"),
                lambda r: f"a pristine-set image must have severity 'pristine', not '{r['severity']}'")
    if (ref["cell_id"] == "").any():
        bad_row(ref["cell_id"] == "", lambda r: "empty cell_id (each image names its source cell)")
    if ref["cell_id"].duplicated().any():
        first_of_cell = ref.drop_duplicates("cell_id").set_index("cell_id")
        bad_row(ref["cell_id"].duplicated(), lambda r: (
            f"cell_id '{r['cell_id']}' (set {r['set']}) is also the source of image_id "
            f"'{first_of_cell.at[r['cell_id'], 'image_id']}' (set {first_of_cell.at[r['cell_id'], 'set']}); each "
            "cell must be scored once per phase, in one set, or a model could answer one image from its memory of "
            "the other (tools/prepare.py builds it so)"))


def _check_coverage(path: Path, ref: pd.DataFrame) -> None:
    """Both sets and every severity of the degraded set occur: each is a leaderboard column."""
    for name in SETS:
        if not (ref["set"] == name).any():
            raise ReferenceDataError(f"{path} has no image in the {name} set")
    degraded = ref.loc[ref["set"] != "pristine", "severity"]
    absent = [s for s in SEVERITIES if not (degraded == s).any()]
    if absent:
        raise ReferenceDataError(f"{path}: the degraded set has no image of severity {', '.join(absent)}")
