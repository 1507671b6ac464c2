"""Render detailed_results.html: one self-contained page (inline CSS, base64 PNG figures) with stable ids.

Stable hooks for tests and readers: table#run-facts (tr[data-fact], the first primary-score), nav#contents,
section#how-to-read, section#run-messages (ul#run-warnings, table#run-errors, p#run-clean or p#run-unknown),
table#leaderboard (tr[data-key], td.value/.ci-low/.ci-high),
section#robustness (table#robustness-drops tr[data-severity] td.macro-f1, td.drop-pristine-set(-low/-high) and
td.drop-severity-pristine(-low/-high), td.rel-drop-pristine-set, td.rel-drop-severity-pristine),
section#calibration (table#calibration-metrics tr[data-set] td.ece/.brier, img#reliability-diagram, or
p#calibration-absent), section#clinical-errors (ul#cell-lines, table#error-groups tr[data-subset] td.<group> and
td.total-errors, table#blast-figures tr[data-subset] td.recall/.precision(-low/-high), p#grouping-source),
section.subset#subset-<name> (table.per-class tr[data-class], table.confusion-matrix).
Numeric cells carry their full-precision value in data-value.
"""
import base64
import html
import io
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from clinical_groups import BLAST, CELL_LINES, ERROR_GROUPS, ON_ONE_LINE, SOURCE
from label_space import CLASSES, PREDICTED_NAMES, SEVERITIES, STAND_IN, STAND_IN_FOR_ITSELF
from leaderboard_scores import LEADERBOARD_TITLES

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f2f2f2}td.name,th.name{text-align:left}
table.confusion-matrix td{min-width:2.2em}
caption{text-align:left;padding:.3em 0}
p.note{color:#555;font-size:.9em}
small.key{display:block;color:#777;font-family:monospace;font-size:.8em}
table#run-facts th{text-align:left}table#run-facts td{text-align:left}
td.error{text-align:left;font-family:monospace;font-size:.85em}
.legend-key{display:block;white-space:nowrap;color:#555;font-size:.9em}
nav#contents ol{columns:2;margin:.3em 0 1em}
.legend{display:inline-block;vertical-align:middle;width:8em;height:1em;border:1px solid #ccc;
background:linear-gradient(to right,rgba(76,114,176,0),rgba(76,114,176,1))}
"""
ERRORS_SHOWN = 10
# CodaBench mounts the unpacked submission here: the uploaded zip's own name never reaches the programs.
WORKER_SUBMISSION_DIR = "ingested_program"

PRIMARY_KEY = next(iter(LEADERBOARD_TITLES))  # the first leaderboard column ranks the phase
PHASE_NAMES = {"eval": "Development (eval)", "test": "Final (test)"}  # competition.yaml's phases and their data
TITLES = {
    "pristine": "Pristine set",
    "degraded": "Degraded set (all severities)",
    **{f"severity_{s}": f"Degraded set, severity {s}" for s in SEVERITIES},
}


def render(scores: dict[str, float], details: dict, run_report: dict | None = None, phase: str | None = None,
           scored_at: datetime | None = None, title: str = "WBCBench detailed results") -> str:
    """The whole page as a string; `details` comes from leaderboard_scores.detailed_results_data, `run_report` from
    ingestion."""
    run_report = run_report or {}
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        _run_facts(scores, details["intervals"], run_report, phase, scored_at or datetime.now(timezone.utc)),
        _contents(details),
        HOW_TO_READ,
        _run_messages(run_report),
        _leaderboard(scores, details),
        _robustness(details),
        _calibration(details),
        _clinical_errors(details),
        *(_subset(subset, _matrix_codes(details)) for subset in details["subsets"]),
        "</body></html>",
    ]
    return "\n".join(parts)


def _contents(details: dict) -> str:
    """A table of contents: the page is long (a section per set and severity)."""
    entries = [("how-to-read", "How to read this page"), ("run-messages", "Warnings and errors"),
               ("leaderboard-section", "Leaderboard figures"), ("robustness", "Robustness"),
               ("calibration", "Calibration"), ("clinical-errors", "Errors by cell line"),
               *((f"subset-{subset['name']}", TITLES[subset["name"]]) for subset in details["subsets"])]
    links = "".join(f"<li><a href='#{anchor}'>{html.escape(title)}</a></li>" for anchor, title in entries)
    return f"<nav id='contents'><h2>Contents</h2><ol>{links}</ol></nav>"


HOW_TO_READ = (
    "<section id='how-to-read'><h2>How to read this page</h2><ul>"
    "<li><b>Leaderboard figures</b>: the values of your leaderboard row, each with a 95% bootstrap interval; "
    "two submissions whose intervals overlap widely are not clearly different.</li>"
    "<li><b>Robustness</b>: how much macro-F1 each degradation severity costs against the pristine set (each "
    "cell is scored once, so these are other cells), with an interval for each drop.</li>"
    "<li><b>Calibration</b> (when you return probabilities): whether your confidence matches your accuracy.</li>"
    "<li><b>Errors as a hematologist groups them</b>: how many of your errors stay on one cell line (a neighbouring "
    "maturation stage is the mildest), cross lines or lineages, or involve a blast; and how many blasts you find "
    "(recall) and how many of your blasts are blasts (precision).</li>"
    "<li><b>Per subset</b>: precision, recall and F1 per class, and the confusion matrix: rows are the true "
    "classes, columns your predictions; the darker a cell, the larger the share of its row "
    "(0% <span class='legend'></span> 100%). A dark cell off the diagonal is "
    "a confusion to work on.</li>"
    "<li>The warnings and per-image errors of the prediction step are listed first: images whose prediction "
    "failed count as wrong.</li></ul></section>"
)


def _submission_name(run_report: dict) -> str:
    path = run_report.get("submission")
    if not path:
        return "not recorded"
    if Path(path).name == WORKER_SUBMISSION_DIR:
        return "your uploaded zip (the platform does not pass its file name)"
    return Path(path).name


def _run_facts(scores: dict[str, float], intervals: dict, run_report: dict, phase: str | None,
               scored_at: datetime) -> str:
    """The header: the primary score, which run this page describes, and how the prediction step went."""
    sets = run_report.get("sets") or {}
    images = " + ".join(f"{sets[s].get('images', '?')} {s}" for s in ("pristine", "degraded") if s in sets)
    status = run_report.get("status") or "not recorded"
    if run_report:
        status += (f", {run_report.get('errors_total', 0)} per-image error(s), "
                   f"{len(run_report.get('warnings') or [])} warning(s)")
    phase = phase or run_report.get("phase")
    low, high = intervals.get(PRIMARY_KEY, (float("nan"), float("nan")))
    facts = [
        ("primary score", f"{LEADERBOARD_TITLES[PRIMARY_KEY]} {scores[PRIMARY_KEY]:.4f} (95% interval {low:.4f} to "
                          f"{high:.4f})"),
        ("phase", PHASE_NAMES.get(phase, phase) if phase else "not recorded (the phase's page names it)"),
        ("submission", _submission_name(run_report)),
        ("scored at", scored_at.strftime("%Y-%m-%d %H:%M UTC")),
        ("ingestion status", status),
        ("device", f"{run_report['device']} (as the submission's process reported it)" if run_report.get("device")
         else "not recorded"),
        ("speed", f"{scores['images_per_second']:.1f} images/s" + (f" over {images} images" if images else "")),
    ]
    rows = "".join(f"<tr data-fact='{name.replace(' ', '-')}'><th>{name}</th><td>{html.escape(str(value))}</td></tr>"
                   for name, value in facts)
    return f"<table id='run-facts'>{rows}</table>"


def _run_messages(run_report: dict) -> str:
    """The prediction step's warnings and its first per-image errors, from run_report.json."""
    warnings = run_report.get("warnings") or []
    errors = run_report.get("errors") or []
    total = run_report.get("errors_total", len(errors))
    parts = ["<section id='run-messages'><h2>Warnings and errors of the prediction step</h2>"]
    if not run_report:
        parts.append("<p id='run-unknown'>The scorer was given no run report, so they are not shown.</p>")
    elif not warnings and not errors:
        parts.append("<p id='run-clean'>None: every image was predicted and nothing needed a warning.</p>")
    if warnings:
        parts.append("<ul id='run-warnings'>" + "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
                     + "</ul>")
    if errors:
        rows = "".join(f"<tr><td class='name'>{html.escape(str(e.get('set')))}</td>"
                       f"<td class='name'>{html.escape(str(e.get('image_id')))}</td>"
                       f"<td class='error'>{html.escape(str(e.get('error')))}</td></tr>" for e in errors[:ERRORS_SHOWN])
        shown = "" if total <= min(len(errors), ERRORS_SHOWN) else f"; the first {min(len(errors), ERRORS_SHOWN)}"
        parts.append(f"<p>{total} image(s) could not be predicted (each scored as wrong){shown}:</p>"
                     "<table id='run-errors'><tr><th class='name'>set</th>"
                     f"<th class='name'>image</th><th class='name'>error</th></tr>{rows}</table>")
    return "".join(parts) + "</section>"


def _num(value: float, css_class: str, digits: int = 4) -> str:
    text = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    return f"<td class='{css_class}' data-value='{value!r}'>{text}</td>"


def _png(fig: Figure, element_id: str, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img id='{element_id}' alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _leaderboard(scores: dict[str, float], details: dict) -> str:
    rows = []
    for key, value in scores.items():
        low, high = details["intervals"].get(key, (float("nan"), float("nan")))
        title = html.escape(LEADERBOARD_TITLES[key])
        rows.append(f"<tr data-key='{key}'><td class='name'>{title}<small class='key'>{key}</small></td>"
                    f"{_num(value, 'value')}"
                    f"{_num(low, 'ci-low')}{_num(high, 'ci-high')}</tr>")
    normalised = details["normalised_labels"]
    return (
        "<section id='leaderboard-section'><h2>Leaderboard figures with 95% bootstrap intervals</h2>"
        "<table id='leaderboard'><tr><th class='name'>score</th><th>value</th><th>95% low</th><th>95% high</th></tr>"
        + "".join(rows) + "</table>"
        f"<p class='note'>Percentile intervals from {details['n_boot']} bootstrap replicates (seed {details['seed']}) "
        "resampling images with replacement within each reference class, so every class keeps its count. "
        "images_per_second is a measurement of this run, not a sample, and has no interval. "
        "Macro averages run over the classes present in the reference of the subset scored."
        + (f" {normalised} prediction row(s) had their label or set normalised (case or spaces)." if normalised else "")
        + (f" {details['unpredicted']} image(s) whose predict() failed (listed in run_report.json) are shown as "
           f"'no prediction' and scored as a certain answer of {STAND_IN} ({STAND_IN_FOR_ITSELF} for an image of class "
           f"{STAND_IN}): always wrong, and never better than that answer." if details["unpredicted"] else "")
        + "</p></section>"
    )


def _robustness(details: dict) -> str:
    def drop_cells(drop: dict | None, name: str) -> str:
        if drop is None:
            return "<td colspan='4' class='name'>the reference itself</td>"
        low, high = drop["interval"]
        return (f"{_num(drop['drop'], name)}{_num(low, f'{name}-low')}{_num(high, f'{name}-high')}"
                f"{_num(drop['relative'], f'rel-{name}')}")

    rows = "".join(
        f"<tr data-severity='{d['severity']}'><td class='name'>{d['severity']}</td>{_num(d['macro_f1'], 'macro-f1')}"
        f"{drop_cells(d['pristine_set'], 'drop-pristine-set')}"
        f"{drop_cells(d['severity_pristine'], 'drop-severity-pristine')}</tr>"
        for d in details["drops"]
    )
    return (
        "<section id='robustness'><h2>Robustness to degradation</h2>"
        "<p class='note'>Each cell of the phase is scored once, in the pristine set or in the degraded set, so "
        "a severity's images are other cells than the pristine set's and the comparison is unpaired. Drop = the "
        "reference's macro-F1 minus the severity's (a loss is positive); relative drop = drop / reference. Two "
        "references: the pristine set, and the degraded set's own severity 'pristine' images (undegraded cells, "
        "re-encoded like the degraded ones), which keeps the encoding alike on both sides. The 95% interval of a "
        "drop comes from independent bootstrap replicates of its two subsets; an interval that contains 0 shows "
        "no clear cost. Severity 'pristine' against the pristine set should be near 0.</p>"
        "<table id='robustness-drops'><tr><th class='name' rowspan='2'>severity</th><th rowspan='2'>macro-F1</th>"
        "<th colspan='4'>drop from the pristine set</th><th colspan='4'>drop from severity pristine</th></tr>"
        "<tr>" + "<th>drop</th><th>95% low</th><th>95% high</th><th>relative</th>" * 2 + "</tr>" + rows + "</table>"
        + _robustness_figure(details) + "</section>"
    )


def _robustness_figure(details: dict) -> str:
    by_name = {s["name"]: s for s in details["subsets"]}
    names = ["pristine"] + [f"severity_{s}" for s in SEVERITIES]
    values = np.array([by_name[n]["metrics"]["macro_f1"] for n in names])
    intervals = np.array([by_name[n]["macro_f1_interval"] for n in names])
    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    ax.bar(range(len(names)), values, color=["#4c72b0"] + ["#dd8452"] * len(SEVERITIES))
    # a percentile interval of a small subset need not contain the observed value, so it is drawn from its ends
    ax.vlines(range(len(names)), intervals[:, 0], intervals[:, 1], color="black")
    ax.scatter(np.repeat(range(len(names)), 2), intervals.ravel(), marker="_", s=80, color="black")
    ax.set_xticks(range(len(names)), ["pristine set"] + [f"degraded\n{s}" for s in SEVERITIES])
    ax.set_ylabel("macro-F1 (95% CI)")
    ax.set_ylim(0, 1)
    return _png(fig, "robustness-figure", "macro-F1 per severity with 95% bootstrap intervals")


def _calibration(details: dict) -> str:
    calibration = details["calibration"]
    if calibration is None:
        return ("<section id='calibration'><h2>Calibration</h2><p id='calibration-absent'>The predictions have no "
                "probability columns (prob_BA..prob_VLY), so calibration is not measured.</p></section>")
    rows = "".join(
        f"<tr data-set='{name}'><td class='name'>{name}</td><td class='images'>{c['images']}</td>"
        f"{_num(c['ece'], 'ece')}{_num(c['brier'], 'brier')}</tr>"
        for name, c in calibration.items()
    )
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for name, c in calibration.items():
        bins = c["bins"]
        used = bins["count"] > 0
        ax.plot(bins["confidence"][used], bins["accuracy"][used], marker="o", label=f"{name} (ECE {c['ece']:.3f})")
    ax.set_xlabel("top-label confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="best")
    return (
        "<section id='calibration'><h2>Calibration</h2><p class='note'>Expected calibration error: top-label, "
        "15 equal-width confidence bins, weighted by bin size. Brier score: mean over images of the squared "
        "distance between the 13 probabilities and the one-hot reference (0 best, 2 worst).</p>"
        "<table id='calibration-metrics'><tr><th class='name'>set</th><th>images</th><th>ECE</th><th>Brier</th></tr>"
        + rows + "</table>" + _png(fig, "reliability-diagram", "reliability diagram") + "</section>"
    )


def _clinical_errors(details: dict) -> str:
    """Errors grouped by cell line and lineage, and blast recall and precision, per subset (clinical_groups.py)."""
    rows = [(subset["name"], TITLES[subset["name"]], subset["clinical"]) for subset in details["subsets"]]
    return (
        "<section id='clinical-errors'><h2>Errors as a hematologist groups them</h2>" + grouping_html()
        + error_groups_table(rows, "subset") + blast_table(rows, "subset")
        + f"<p class='note'>{blast_note(details['n_boot'])}</p></section>"
    )


def grouping_html() -> str:
    """The grouping in words (clinical_groups.py): the cell lines, what each error group holds, and the source."""
    lines = "".join(
        f"<li><b>{html.escape(line.name)}</b> ({line.lineage}): "
        + (" &rarr; ".join(line.classes) + ", least to most mature" if line.ordered else ", ".join(line.classes))
        + "</li>" for line in CELL_LINES)
    groups = "".join(f"<li><b>{title}</b>: {html.escape(meaning)}</li>" for title, meaning in ERROR_GROUPS.values())
    on_line = " and ".join(f"'{ERROR_GROUPS[key][0]}'" for key in ON_ONE_LINE)
    return ("<p class='note'>Macro-F1 weighs every confusion alike; a hematologist does not. Each error is put in one "
            f"group by the cell lines below; {on_line} errors stay on one line. The grouping shows the structure of "
            "the errors; it puts no cost on them.</p>"
            f"<ul id='cell-lines'>{lines}<li><b>blasts</b> ({BLAST}): no lineage assigned</li></ul><ul>{groups}</ul>"
            f"<p id='grouping-source' class='note'>Source of the grouping: {html.escape(SOURCE)}</p>")


def error_groups_table(rows: list[tuple[str, str, dict]], row_kind: str) -> str:
    """table#error-groups: one row per (key, title, clinical_groups.clinical_summary) with each group's count and
    share of the errors; rows carry data-<row_kind>='key' (the ranking report lists teams with the same table)."""
    head = "".join(f"<th>{title}</th>" for title, _ in ERROR_GROUPS.values())
    body = []
    for key, title, clinical in rows:
        total = clinical["total_errors"]
        cells = "".join(
            f"<td class='{group}' data-value='{count / total if total else 0.0!r}'>{count}"
            f" ({count / total if total else 0.0:.0%})</td>" for group, count in clinical["errors"].items())
        body.append(f"<tr data-{row_kind}='{html.escape(key)}'><td class='name'>{html.escape(title)}</td>"
                    f"<td class='total-errors'>{total}</td>{cells}</tr>")
    return (f"<table id='error-groups'><tr><th class='name'>{row_kind}</th><th>errors</th>{head}</tr>"
            + "".join(body) + "</table>")


def blast_table(rows: list[tuple[str, str, dict]], row_kind: str) -> str:
    """table#blast-figures: blasts, found, called blast, recall and precision with their 95% intervals, per row."""
    body = []
    for key, title, clinical in rows:
        recall_low, recall_high = clinical["recall_interval"] or (None, None)
        precision_low, precision_high = clinical["precision_interval"]
        body.append(
            f"<tr data-{row_kind}='{html.escape(key)}'><td class='name'>{html.escape(title)}</td>"
            f"<td class='blasts'>{clinical['blasts']}</td><td class='found'>{clinical['blasts_found']}</td>"
            f"<td class='called'>{clinical['called_blast']}</td>{_num(clinical['recall'], 'recall')}"
            f"{_num(recall_low, 'recall-low')}{_num(recall_high, 'recall-high')}"
            f"{_num(clinical['precision'], 'precision')}{_num(precision_low, 'precision-low')}"
            f"{_num(precision_high, 'precision-high')}</tr>")
    return (f"<table id='blast-figures'><tr><th class='name' rowspan='2'>{row_kind}</th><th rowspan='2'>blasts</th>"
            "<th rowspan='2'>found</th><th rowspan='2'>called blast</th><th colspan='3'>blast recall</th>"
            "<th colspan='3'>blast precision</th></tr><tr>" + "<th>value</th><th>95% low</th><th>95% high</th>" * 2
            + "</tr>" + "".join(body) + "</table>")


def blast_note(n_boot: int) -> str:
    """What the blast figures and their intervals mean."""
    return ("Recall: blasts found / blasts in the reference (n/a without blasts). Precision: blasts found / images "
            f"called a blast (0 when none is). 95% percentile intervals from {n_boot} class-stratified bootstrap "
            "replicates; a recall of 0 or 1 gives an interval of one point, which with a handful of blasts is no "
            "evidence of certainty.")


def _matrix_codes(details: dict) -> tuple[np.ndarray, np.ndarray]:
    """(row codes, column codes) shared by every confusion matrix of the page, so that one class sits in the same
    place in each: the run's reference classes, and those plus any code predicted anywhere in the run."""
    total = sum(subset["confusion"] for subset in details["subsets"] if subset["name"] in ("pristine", "degraded"))
    return np.flatnonzero(total.sum(axis=1)), np.flatnonzero(total.sum(axis=1) + total.sum(axis=0))


def _subset(subset: dict, codes: tuple[np.ndarray, np.ndarray]) -> str:
    name, metrics = subset["name"], subset["metrics"]
    low, high = subset["macro_f1_interval"]
    per_class = "".join(
        f"<tr data-class='{r['class']}'><td class='name'>{r['class']}</td>{_num(r['precision'], 'precision')}"
        f"{_num(r['recall'], 'recall')}{_num(r['f1'], 'f1')}<td class='support'>{r['support']}</td></tr>"
        for r in subset["per_class"]
    )
    return (
        f"<section class='subset' id='subset-{name}'><h2>{TITLES[name]}</h2>"
        f"<p>{subset['images']} images; macro-F1 <span class='macro-f1' data-value='{metrics['macro_f1']!r}'>"
        f"{metrics['macro_f1']:.4f}</span> (95% CI {low:.4f} to {high:.4f}); balanced accuracy "
        f"{metrics['balanced_accuracy']:.4f}; macro precision {metrics['macro_precision']:.4f}; "
        f"macro specificity {metrics['macro_specificity']:.4f}.</p>"
        "<table class='per-class'><tr><th class='name'>class</th><th>precision</th><th>recall</th><th>F1</th>"
        "<th>support</th></tr>" + per_class + "</table>" + _confusion_table(subset["confusion"], *codes) + "</section>"
    )


def _confusion_table(cm: np.ndarray, rows_used: np.ndarray, cols_used: np.ndarray) -> str:
    """The given rows (reference classes) and columns (predicted codes) of `cm`, shaded by row share; a row with no
    image in this subset stays empty."""
    head = "".join(f"<th>{PREDICTED_NAMES[c]}</th>" for c in cols_used)
    body = []
    for r in rows_used:
        total = cm[r].sum()
        cells = "".join(
            f"<td style='background:rgba(76,114,176,{cm[r, c] / total if total else 0:.2f})'>{cm[r, c]}</td>"
            for c in cols_used
        )
        body.append(f"<tr data-class='{CLASSES[r]}'><th class='name'>{CLASSES[r]}</th>{cells}</tr>")
    return ("<table class='confusion-matrix'><caption>Confusion matrix (rows: reference, columns: predicted)"
            "<span class='legend-key'>shading: share of the row, 0% <span class='legend'></span> 100%</span>"
            f"</caption><tr><th class='name'>reference \\ predicted</th>{head}</tr>" + "".join(body) + "</table>")
