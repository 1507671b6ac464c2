"""Final ranking as CodaBench orders a leaderboard, with bootstrap rank stability from tools/compare.py.

Usage:
  python tools/rank.py S1/scores.json S2/scores.json ...      # one scores.json per submission, oldest first
  python tools/rank.py results.csv                            # the Final phase's results exported from CodaBench
  add --predictions OUT1 OUT2 ... --reference REF.csv         # their prediction outputs, same order: rank stability

The order is CodaBench's (api/serializers/leaderboards.py): the primary column, then every other column of
competition.yaml's leaderboard in index order, each by its own sorting, then submission time (oldest first).
Values are compared as the platform stores them, rounded to 10 decimals, not as it shows them. A CSV export
lists the submissions in the platform's order, so its row order stands for submission time; scores.json
files are taken in the order given. Each OUT is a prediction step's output folder (predictions.csv + run_report.json)
or its predictions file, read as the scorer reads it (accepted predict() failures count as wrong). The full report
with significance and rankings by severity is tools/ranking_report.py.
"""
import argparse
import csv
import json
import sys
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from compare import compare_files, submission_names
from competition_rules import load_competition
from scoring_errors import ScoringError

REPO = Path(__file__).resolve().parents[1]
STORED = Decimal("1e-10")  # SubmissionScore.score: DecimalField(max_digits=20, decimal_places=10)
SUBMISSION_TIME = "submission time"


class RankingError(ValueError):
    """Unusable input; the message names the file, row and column."""


def leaderboard_columns(config: dict) -> list:
    """The first leaderboard's columns in CodaBench's comparison order: the primary column, then by index."""
    board = (config.get("leaderboards") or [{}])[0]
    columns = sorted(board.get("columns") or [], key=lambda column: column["index"])
    primary = board.get("primary_index", 0)
    return [c for c in columns if c["index"] == primary] + [c for c in columns if c["index"] != primary]


def stored_value(value, where: str) -> Decimal:
    """The score as CodaBench stores it (10 decimals)."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RankingError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite():
        raise RankingError(f"{where}: {value!r} is not a finite number")
    return number.quantize(STORED, rounding=ROUND_HALF_EVEN)


def read_scores_files(paths: list, columns: list) -> list:
    """One row per scores.json: name (from its path) and every column's stored value."""
    rows = []
    for path, name in zip(paths, submission_names([Path(p) for p in paths])):
        scores = json.loads(Path(path).read_text(encoding="utf-8"))
        missing = [c["key"] for c in columns if c["key"] not in scores]
        if missing:
            raise RankingError(f"{path}: no {', '.join(missing)} (a scores.json written by scoring_program/score.py)")
        rows.append({"name": name, **{c["key"]: stored_value(scores[c["key"]], f"{path} {c['key']}")
                                      for c in columns}})
    return rows


def read_codabench_csv(path, columns: list) -> list:
    """Rows of CodaBench's results export: 'Username', then '<task name>(<task id>)-<column title>' per column."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        found = {}
        for column in columns:
            matches = [name for name in header if name.endswith(f")-{column['title']}")]
            if len(matches) != 1:
                raise RankingError(f"{path}: expected one header '<task>(<id>)-{column['title']}', found "
                                   f"{matches or 'none'} (header: {header})")
            found[column["key"]] = matches[0]
        rows = []
        for line, record in enumerate(reader, start=2):
            rows.append({"name": record.get("Username") or f"row {line}",
                         **{key: stored_value(record[name], f"{path} line {line} column '{name}'")
                            for key, name in found.items()}})
    return rows


def rank(rows: list, columns: list) -> list:
    """rows ordered as the leaderboard is, each with 'position' (1 = first) and 'decided_by' (the column that puts
    it below the row above, or 'submission time' when every value is equal)."""
    def sort_key(row):
        return tuple(-row[c["key"]] if c.get("sorting", "desc") == "desc" else row[c["key"]] for c in columns)

    ordered = [dict(row) for row in sorted(rows, key=sort_key)]  # stable: equal rows keep submission order
    for position, (row, above) in enumerate(zip(ordered, [None] + ordered[:-1]), start=1):
        row["position"] = position
        row["decided_by"] = "" if above is None else next(
            (c["key"] for c in columns if row[c["key"]] != above[c["key"]]), SUBMISSION_TIME)
    return ordered


def add_stability(ordered: list, rows: list, predictions: list, reference: Path, n_boot: int, seed: int) -> None:
    """Each row gains the share of bootstrap replicates in which it keeps its primary-score rank, and the 95%
    range of its rank (tools/compare.py: paired, class-stratified resampling of the degraded set)."""
    if len(predictions) != len(rows):
        raise RankingError(f"{len(predictions)} prediction outputs for {len(rows)} submissions: give one per "
                           "submission, in the same order")
    result = compare_files([Path(p) for p in predictions], reference, n_boot, seed)
    by_name = {row["name"]: index for index, row in enumerate(rows)}
    for row in ordered:
        index = by_name[row["name"]]
        row["keeps_rank"] = float(result["rank_stability"][index])
        row["rank_range"] = tuple(int(r) for r in result["rank_range"][index])


def format_ranking(ordered: list, columns: list) -> str:
    """The ranking as a plain-text table (values shown to 4 decimals; compared on 10)."""
    width = max([len("submission")] + [len(row["name"]) for row in ordered])
    primary = columns[0]["key"]
    stability = "keeps_rank" in (ordered[0] if ordered else {})
    lines = [f"{'#':<3} {'submission':<{width}}  {primary:<18} decided by" + ("   keeps rank  rank range"
                                                                             if stability else "")]
    for row in ordered:
        line = f"{row['position']:<3} {row['name']:<{width}}  {row[primary]:<18.4f} {row['decided_by'] or '-':<28}"
        if stability:
            line += f" {row['keeps_rank']:>9.1%}  {row['rank_range'][0]}-{row['rank_range'][1]}"
        lines.append(line.rstrip())
    lines.append("")
    lines.append("Order: " + ", then ".join(c["key"] for c in columns) + ", then submission time (oldest first)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", type=Path, help="scores.json files (oldest first) or one CodaBench CSV")
    parser.add_argument("--competition", type=Path, default=REPO / "competition.yaml",
                        help="the competition.yaml whose leaderboard columns define the order")
    parser.add_argument("--predictions", nargs="+", type=Path,
                        help="prediction output folder (or its predictions.csv) per submission, same order")
    parser.add_argument("--reference", type=Path, help="the phase's reference.csv (with --predictions)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if bool(args.predictions) != bool(args.reference):
        parser.error("--predictions and --reference go together")
    columns = leaderboard_columns(load_competition(args.competition))
    try:
        if len(args.scores) == 1 and args.scores[0].suffix.lower() == ".csv":
            rows = read_codabench_csv(args.scores[0], columns)
        else:
            rows = read_scores_files(args.scores, columns)
        ordered = rank(rows, columns)
        if args.predictions:
            add_stability(ordered, rows, args.predictions, args.reference, args.bootstrap, args.seed)
    except (RankingError, ScoringError, OSError, json.JSONDecodeError) as error:
        print(f"rank: {error}", file=sys.stderr)
        return 1
    print(format_ranking(ordered, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
