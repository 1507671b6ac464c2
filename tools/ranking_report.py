"""The final ranking report for organizers: one HTML page and its figures, from every team's Final-phase prediction
output and the phase's reference.

Usage:
  python tools/ranking_report.py OUT1 OUT2 ... --reference reference_data/test [--out ranking_report]

Each OUT is a team's prediction-step output folder (predictions.csv + run_report.json, and the worker's `metadata`
when downloaded from CodaBench), or TEAM=FOLDER to name the team; give them oldest submission first, since
submission time is CodaBench's last tie-break. Every folder is read as the scorer reads it
(scoring_program/prediction_output.py): a run scored with accepted predict() failures is ranked with those images
wrong. Writes <out>/ranking_report.html (figures embedded) and each figure as a PNG beside it. The method is stated in
pages/evaluation.md ("The final ranking report") and on the page itself.
"""
import argparse
import base64
import html
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import ranking_figures
from bootstrap_ci import N_BOOTSTRAP
from compare import compare, read_output, submission_names
from competition_rules import load_competition
from detailed_results import CSS, blast_note, blast_table, error_groups_table, grouping_html
from label_space import SEVERITIES
from leaderboard_scores import (LEADERBOARD_KEYS, LEADERBOARD_TITLES, compute_scores, detailed_results_data,
                                subset_figures)
from prediction_output import PredictionOutput
from rank import RankingError, leaderboard_columns, rank, stored_value
from ranking_statistics import (ALPHA, Significance, bootstrap_tau, kendall_tau, pairwise_significance,
                                rankings_by_scheme, replicates_needed, separated_from_next)
from reference_file import read_reference
from scoring_errors import ScoringError

REPO = Path(__file__).resolve().parents[1]
PAGE = "ranking_report.html"
PRIMARY = LEADERBOARD_KEYS[0]  # degraded macro-F1: the bootstrap and the tests run on the degraded set
# The rankings set beside the official one: each set or severity's macro-F1 (leaderboard keys) and short titles.
SCHEMES = {"pristine_macro_f1": "pristine set",
           **{f"severity_{s}_macro_f1": f"severity {s}" for s in SEVERITIES}}
SEVERITY_SCHEMES = tuple(f"severity_{s}_macro_f1" for s in SEVERITIES)
FIGURES = {"blob_plot": "rank distributions (blob plot)", "significance_map": "significance map",
           "rankings_by_severity": "rankings by severity"}


@dataclass(frozen=True)
class Team:
    """One team's prediction output, read as the scorer reads it, and the leaderboard row the scorer gives it."""

    name: str
    output: PredictionOutput
    scores: dict[str, float]


@dataclass(frozen=True)
class RankingReport:
    """Every figure of the page, teams in official order."""

    teams: list[Team]
    places: list[dict]  # rank.rank's rows: position, decided_by and the stored values
    columns: list[dict]  # the leaderboard's columns in comparison order
    comparison: dict  # compare.compare on the degraded set
    significance: Significance
    separated: list[bool]  # per place but the last: separated from the next
    rankings: dict[str, np.ndarray]  # scheme -> ranks, plus mean_rank and by_mean_rank
    taus: dict[str, float]  # scheme -> Kendall's tau with the official ranking
    replicate_taus: np.ndarray  # (B,) tau of each bootstrap replicate's ranking with the official one
    clinical: list[dict]  # each team's degraded-set grouped errors and blast figures, as on its own page
    images: dict[str, int]  # reference images per set
    n_boot: int
    seed: int
    alpha: float


def parse_team(spec: str) -> tuple[str | None, Path]:
    """'TEAM=FOLDER' or 'FOLDER'."""
    name, sep, folder = spec.partition("=")
    return (name, Path(folder)) if sep and name else (None, Path(spec))


def read_teams(specs: list[str], reference: pd.DataFrame) -> list[Team]:
    """Each team's output read and scored by the scorer's own code, in the order given (oldest submission first)."""
    parsed = [parse_team(spec) for spec in specs]
    default_names = submission_names([folder for _, folder in parsed])
    names = [name or default for (name, _), default in zip(parsed, default_names)]
    if len(set(names)) != len(names):
        raise RankingError(f"two teams have the same name among {', '.join(names)}: name them as TEAM=FOLDER")
    teams = []
    for name, (_, folder) in zip(names, parsed):
        if not folder.is_dir():
            raise RankingError(f"team {name}: {folder} is not a folder; expected the team's prediction output "
                               "(predictions.csv + run_report.json)")
        try:
            output = read_output(folder, reference)
        except ScoringError as err:
            raise type(err)(f"team {name}: {err}") from None
        teams.append(Team(name, output, compute_scores(subset_figures(output.table), output.images_per_second)))
    return teams


def official_order(teams: list[Team], columns: list[dict]) -> tuple[list[Team], list[dict]]:
    """The teams in CodaBench's order (tools/rank.py on the values the scorer writes) and rank's rows."""
    rows = [{"name": team.name, **{c["key"]: stored_value(team.scores[c["key"]], f"team {team.name} {c['key']}")
                                   for c in columns}} for team in teams]
    places = rank(rows, columns)
    by_name = {team.name: team for team in teams}
    return [by_name[row["name"]] for row in places], places


def analyse(teams: list[Team], columns: list[dict], n_boot: int | None = None, seed: int = 0,
            alpha: float = ALPHA) -> RankingReport:
    """Official order, bootstrap ranks and pairwise tests on the degraded set, rankings by severity, grouped errors.

    n_boot: bootstrap replicates; None takes ranking_statistics.replicates_needed for this many teams.
    """
    if len(teams) < 2:
        raise RankingError(f"a ranking report needs at least two teams, got {len(teams)}")
    teams, places = official_order(teams, columns)
    n_boot = replicates_needed(len(teams), alpha) if n_boot is None else n_boot
    table = teams[0].output.table
    degraded = table.set == "degraded"
    y_preds = np.stack([team.output.table.y_pred[degraded] for team in teams])
    comparison = compare(table.y_true[degraded], y_preds, [t.name for t in teams], n_boot, seed)
    significance = pairwise_significance(comparison["p_value"], alpha)
    official = np.arange(1, len(teams) + 1)
    rankings = rankings_by_scheme({key: np.array([t.scores[key] for t in teams]) for key in SCHEMES},
                                  SEVERITY_SCHEMES)
    taus = {name: kendall_tau(official, rankings[name]) for name in (*SCHEMES, "by_mean_rank")}
    clinical = [degraded_clinical(team) for team in teams]
    return RankingReport(
        teams=teams, places=places, columns=columns, comparison=comparison, significance=significance,
        separated=separated_from_next(significance), rankings=rankings, taus=taus,
        replicate_taus=bootstrap_tau(official, comparison["replicate_ranks"]), clinical=clinical,
        images={name: int((table.set == name).sum()) for name in ("pristine", "degraded")},
        n_boot=n_boot, seed=seed, alpha=alpha)


def degraded_clinical(team: Team) -> dict:
    """The degraded set's grouped errors and blast figures exactly as the team's detailed_results.html gives them
    (the scorer's own data, the same seed and replicates)."""
    details = detailed_results_data(team.output.table, subset_figures(team.output.table))
    return next(subset["clinical"] for subset in details["subsets"] if subset["name"] == "degraded")


def draw(report: RankingReport) -> dict[str, bytes]:
    """Each figure's PNG, by FIGURES name."""
    names = [team.name for team in report.teams]
    schemes = ["official", *SCHEMES.values(), "mean rank over severities"]
    scheme_ranks = np.stack([np.arange(1, len(names) + 1), *(report.rankings[k] for k in SCHEMES),
                             report.rankings["by_mean_rank"]])
    primary = np.array([team.scores[PRIMARY] for team in report.teams])
    return {
        "blob_plot": ranking_figures.png_bytes(ranking_figures.blob_plot(names, report.comparison["replicate_ranks"])),
        "significance_map": ranking_figures.png_bytes(ranking_figures.significance_map(
            names, report.significance.adjusted, primary, report.alpha)),
        "rankings_by_severity": ranking_figures.png_bytes(ranking_figures.rank_lines(names, schemes, scheme_ranks)),
    }


def write_report(report: RankingReport, out_dir: Path, reference_path: Path) -> Path:
    """Write the page and the figures' PNGs into out_dir; returns the page's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = draw(report)
    for name, data in figures.items():
        (out_dir / f"{name}.png").write_bytes(data)
    page = out_dir / PAGE
    page.write_text(render(report, figures, reference_path), encoding="utf-8")
    return page


def render(report: RankingReport, figures: dict[str, bytes], reference_path: Path,
           generated_at: datetime | None = None) -> str:
    """The whole page as a string."""
    title = "WBCBench final ranking report"
    stamp = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body><h1>{title}</h1>",
        _inputs(report, reference_path, stamp),
        _method(report),
        _official_ranking(report),
        _rank_distributions(report, figures["blob_plot"]),
        _significance(report, figures["significance_map"]),
        _rankings_by_severity(report, figures["rankings_by_severity"]),
        _clinical_errors(report),
        "</body></html>",
    ])


def _img(data: bytes, element_id: str) -> str:
    """The PNG embedded at 96 CSS pixels per inch of the figure (the file keeps ranking_figures.DPI for print)."""
    alt = html.escape(FIGURES[element_id.replace("-", "_")])
    width = int.from_bytes(data[16:20], "big") * 96 // ranking_figures.DPI  # the PNG header's width in pixels
    return (f"<img id='{element_id}' alt='{alt}' style='width:{width}px;max-width:100%' "
            f"src='data:image/png;base64,{base64.b64encode(data).decode('ascii')}'>")


def _td(value: float | None, css_class: str, digits: int = 4) -> str:
    """A numeric cell with its full value in data-value; n/a for None or NaN (e.g. tau when every rank ties)."""
    value = None if value is None or np.isnan(value) else float(value)
    text = "n/a" if value is None else f"{value:.{digits}f}"
    return f"<td class='{css_class}' data-value='{value!r}'>{text}</td>"


def _verdict(separated: bool) -> str:
    return "separated" if separated else "not separated"


def _inputs(report: RankingReport, reference_path: Path, stamp: str) -> str:
    rows = "".join(
        f"<tr data-team='{html.escape(team.name)}'><td class='name'>{html.escape(team.name)}</td>"
        f"<td class='name'>{html.escape(str(team.output.folder))}</td>"
        f"<td class='unpredicted'>{team.output.table.unpredicted}</td></tr>" for team in report.teams)
    return (
        "<section id='inputs'><h2>Inputs</h2>"
        f"<p>Reference: {html.escape(str(reference_path))} ({report.images['pristine']} pristine and "
        f"{report.images['degraded']} degraded images, each cell once). Generated {stamp}; {report.n_boot} bootstrap "
        f"replicates, seed {report.seed}, family-wise &alpha; = {report.alpha:g}.</p>"
        "<table id='teams'><tr><th class='name'>team</th><th class='name'>prediction output</th>"
        "<th>images with no prediction (accepted predict() failures, scored as answers of SNE, LY for an SNE)</th></tr>" + rows + "</table>"
        "</section>"
    )


def _method(report: RankingReport) -> str:
    m = len(report.teams)
    pairs = m * (m - 1) // 2
    floor = 2 / (report.n_boot + 1)
    warning = ""
    if floor >= report.alpha / pairs:
        warning = (f"<p id='resolution-warning'><b>Too few replicates</b>: with {report.n_boot}, the smallest "
                   f"p-value is {floor:.4f}, not below Holm's first threshold ({report.alpha:g} / {pairs} pairs), so "
                   f"no pair can be separated; use the default ({replicates_needed(m, report.alpha)}).</p>")
    return (
        "<section id='method'><h2>Method</h2><ul>"
        "<li><b>Official ranking</b>: CodaBench's order (the primary column, then every other leaderboard column in "
        "its index order, then submission time) on the values as stored (rounded to 10 decimals), computed from "
        "each team's prediction output by the scoring program's own code; 'decided by' names the first column in "
        "which a place differs from the one above.</li>"
        f"<li><b>Uncertainty</b>: {report.n_boot} bootstrap replicates of the degraded set, resampling images with "
        "replacement within each reference class (every class keeps its count); in each replicate every team is "
        "scored on the same images, so comparisons between teams are paired.</li>"
        "<li><b>Rank distributions</b>: each team's rank by degraded macro-F1 in every replicate (ties share the "
        "better rank); 'keeps rank' is the share of replicates in which a team has its observed rank.</li>"
        "<li><b>Significance</b>: for every pair of teams, a two-sided paired bootstrap test of the difference in "
        "degraded macro-F1 (p = 2 &times; the smaller share of replicates on either side of 0, with the +1 "
        f"correction, so never below 2/(B+1) = {floor:.4f}); the {pairs} p-values are adjusted "
        f"together by Holm's method, controlling the family-wise error rate at {report.alpha:g}. A place is "
        "separated from the next when that pair's adjusted p-value is below it.</li>"
        "<li><b>Rankings by severity</b>: the teams ranked by macro-F1 on the pristine set and on each severity of "
        "the degraded set, and by the mean of their four severity ranks; Kendall's tau-b with the official ranking "
        "(1 = the same order). The pristine set and the severities are different cells, so these rankings are "
        "descriptive: no test runs across them.</li>"
        "<li><b>Clinically grouped errors</b>: each team's degraded-set errors grouped by cell line and lineage, "
        f"with blast recall and precision, as on the team's own detailed results ({N_BOOTSTRAP} replicates).</li>"
        "</ul>" + warning + "</section>"
    )


def _official_ranking(report: RankingReport) -> str:
    titles = {c["key"]: c["title"] for c in report.columns}
    comparison, adjusted = report.comparison, report.significance.adjusted
    rows = []
    for i, (team, place) in enumerate(zip(report.teams, report.places)):
        low, high = comparison["interval"][i]
        r_low, r_high = comparison["rank_range"][i]
        decided = place["decided_by"]
        separated = (f"<td class='separated' data-value='{report.separated[i]}'>"
                     f"{_verdict(report.separated[i])} (p = {adjusted[i, i + 1]:.4f})</td>"
                     if i + 1 < len(report.teams) else "<td class='separated'>-</td>")
        rows.append(
            f"<tr data-team='{html.escape(team.name)}'><td class='position'>{place['position']}</td>"
            f"<td class='name'>{html.escape(team.name)}</td>{_td(team.scores[PRIMARY], 'primary')}"
            f"{_td(low, 'ci-low')}{_td(high, 'ci-high')}"
            f"<td class='name decided-by' data-key='{decided}'>{html.escape(titles.get(decided, decided) or '-')}</td>"
            f"{_td(comparison['rank_stability'][i], 'keeps-rank', 3)}<td class='rank-range'>{r_low}-{r_high}</td>"
            f"{separated}</tr>")
    count = sum(report.separated)
    values = "".join(
        f"<tr data-team='{html.escape(team.name)}'><td class='name'>{html.escape(team.name)}</td>"
        + "".join(_td(team.scores[c["key"]], c["key"]) for c in report.columns) + "</tr>" for team in report.teams)
    return (
        "<section id='official-ranking'><h2>Official ranking</h2>"
        "<table id='ranking'><tr><th>place</th><th class='name'>team</th><th>degraded macro-F1</th><th>95% low</th>"
        "<th>95% high</th><th class='name'>decided by</th><th>keeps rank</th><th>95% rank range</th>"
        "<th>against the next place (Holm-adjusted p)</th></tr>" + "".join(rows) + "</table>"
        f"<p id='separated-summary'><b>{count} of {len(report.separated)}</b> places are statistically separated "
        f"from the next (Holm-adjusted p &lt; {report.alpha:g}).</p>"
        "<table id='leaderboard-values'><tr><th class='name'>team</th>"
        + "".join(f"<th>{html.escape(c['title'])}</th>" for c in report.columns) + "</tr>" + values + "</table>"
        "<p class='note'>Values as the scoring program computes them, shown to 4 decimals (compared on 10). Images "
        "per second is a measurement of each run on its worker.</p></section>"
    )


def _rank_distributions(report: RankingReport, figure: bytes) -> str:
    low, median, high = np.nanpercentile(report.replicate_taus, [2.5, 50, 97.5])
    return (
        "<section id='rank-distributions'><h2>Rank distributions</h2>" + _img(figure, "blob-plot")
        + "<p class='note'>Each column is a team in official order; a blob's area is the share of bootstrap "
        "replicates in which the team takes that rank, the cross its median rank and the bar 95% of its ranks. A "
        "team whose blobs lie on one rank holds its place whatever the sample of images.</p>"
        f"<p id='bootstrap-tau'>Kendall's tau between the official ranking and each replicate's: median "
        f"{median:.3f}, 95% of replicates between {low:.3f} and {high:.3f}.</p></section>"
    )


def _significance(report: RankingReport, figure: bytes) -> str:
    names = [team.name for team in report.teams]
    sig = report.significance
    rows = "".join(
        f"<tr data-pair='{html.escape(names[i])}|{html.escape(names[j])}'><td class='name'>{html.escape(names[i])}"
        f"</td><td class='name'>{html.escape(names[j])}</td>"
        f"{_td(report.teams[i].scores[PRIMARY] - report.teams[j].scores[PRIMARY], 'difference')}"
        f"{_td(sig.p_value[i, j], 'p-value')}{_td(sig.adjusted[i, j], 'adjusted')}"
        f"<td class='significant'>{_verdict(sig.separated[i, j])}</td></tr>"
        for i in range(len(names)) for j in range(i + 1, len(names)))
    return (
        "<section id='significance'><h2>Significance map</h2>" + _img(figure, "significance-map")
        + "<p class='note'>Teams in official order on both axes. A dark cell: the row's team has a significantly "
        "higher degraded macro-F1 than the column's; light: significantly lower; grey: not separated. Paired "
        f"bootstrap test, Holm-adjusted over all pairs at {report.alpha:g}.</p>"
        "<table id='pairwise'><tr><th class='name'>team</th><th class='name'>against</th><th>difference</th>"
        "<th>p</th><th>Holm-adjusted p</th><th>verdict</th></tr>" + rows + "</table></section>"
    )


def _rankings_by_severity(report: RankingReport, figure: bytes) -> str:
    rankings = report.rankings
    rows = "".join(
        f"<tr data-team='{html.escape(team.name)}'><td class='name'>{html.escape(team.name)}</td><td>{i + 1}</td>"
        + "".join(f"<td class='{key}'>{rankings[key][i]}</td>" for key in SCHEMES)
        + f"{_td(float(rankings['mean_rank'][i]), 'mean-rank', 2)}<td class='by-mean-rank'>"
        f"{rankings['by_mean_rank'][i]}</td></tr>" for i, team in enumerate(report.teams))
    taus = "".join(_td(report.taus[key], key, 3) for key in SCHEMES)
    return (
        "<section id='rankings-by-severity'><h2>Rankings by set and severity</h2>"
        "<table id='schemes'><tr><th class='name'>team</th><th>official</th>"
        + "".join(f"<th>{title}</th>" for title in SCHEMES.values())
        + "<th>mean severity rank</th><th>by mean rank</th></tr>" + rows
        + f"<tr id='kendall-tau'><td class='name'>Kendall's tau with the official ranking</td><td>1</td>{taus}"
        f"<td></td>{_td(report.taus['by_mean_rank'], 'by_mean_rank', 3)}</tr></table>"
        + _img(figure, "rankings-by-severity")
        + "<p class='note'>Each column ranks the teams by one leaderboard column ("
        + ", ".join(html.escape(LEADERBOARD_TITLES[key]) for key in SCHEMES)
        + "); rank 1 is the best and teams with equal macro-F1 share the better rank. The mean severity rank "
        "averages the four severity ranks, and the last column ranks the teams by it.</p></section>"
    )


def _clinical_errors(report: RankingReport) -> str:
    rows = [(team.name, team.name, clinical) for team, clinical in zip(report.teams, report.clinical)]
    return (
        "<section id='clinical-errors'><h2>Errors as a hematologist groups them (degraded set)</h2>" + grouping_html()
        + error_groups_table(rows, "team") + blast_table(rows, "team")
        + f"<p class='note'>{blast_note(N_BOOTSTRAP)}</p></section>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outputs", nargs="+", help="each team's prediction output folder, or TEAM=FOLDER, oldest "
                                                   "submission first")
    parser.add_argument("--reference", required=True, type=Path,
                        help="the phase's reference folder (reference_data/test) or its reference.csv")
    parser.add_argument("--out", type=Path, default=Path("ranking_report"), help="folder for the page and figures")
    parser.add_argument("--competition", type=Path, default=REPO / "competition.yaml",
                        help="the competition.yaml whose leaderboard columns define the order")
    parser.add_argument("--bootstrap", type=int, default=None,
                        help="bootstrap replicates (default: enough for Holm's correction over all pairs, at least "
                             f"{N_BOOTSTRAP})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    reference_path = args.reference / "reference.csv" if args.reference.is_dir() else args.reference
    try:
        columns = leaderboard_columns(load_competition(args.competition))
        teams = read_teams(args.outputs, read_reference(reference_path))
        report = analyse(teams, columns, args.bootstrap, args.seed)
        page = write_report(report, args.out, reference_path)
    except (RankingError, ScoringError, OSError) as error:
        print(f"ranking_report: {error}", file=sys.stderr)
        return 1
    print(f"{sum(report.separated)} of {len(report.separated)} places separated from the next; wrote {page} and "
          + ", ".join(f"{name}.png" for name in FIGURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
