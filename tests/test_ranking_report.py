"""tools/ranking_report.py on synthetic teams of known structure: twins are not separated, a clearly better team is,
accepted predict() failures are ranked as the scorer scores them, and the page holds its sections and figures."""
import re
import subprocess
import sys

import numpy as np
import pytest

from competition_rules import load_competition
from rank import RankingError, leaderboard_columns
from ranking_report import analyse, draw, read_teams, render
from ranking_statistics import holm_adjusted, pairwise_significance, replicates_needed
from reference_file import read_reference
from score import score
from scoring_errors import SubmissionOutputError
from scoring_inputs import REPO, predictions_frame, reference_frame, write_output

# submission order; the twin is a copy of `strong` submitted later, `flaky` is `strong` with failed images
TEAMS = {"strong": 0.08, "weak": 0.6, "strong_twin": 0.08, "middling": 0.3}


@pytest.fixture(scope="module")
def phase(tmp_path_factory):
    """The reference and each team's prediction output folder."""
    root = tmp_path_factory.mktemp("ranking_report")
    reference = reference_frame(cells_per_class=20)
    reference.to_csv(root / "reference.csv", index=False)
    folders = {}
    for name, error_rate in TEAMS.items():
        seed = 1 if name.startswith("strong") else len(name)
        folders[name] = write_output(root / name, reference, predictions_frame(reference, error_rate, seed=seed))
    degraded_ids = tuple(reference.loc[reference["set"] == "degraded", "image_id"][:3])
    folders["flaky"] = write_output(root / "flaky", reference, predictions_frame(reference, 0.08, seed=1),
                                    failed=degraded_ids)
    return root, reference, folders


@pytest.fixture(scope="module")
def columns():
    return leaderboard_columns(load_competition(REPO / "competition.yaml"))


@pytest.fixture(scope="module")
def report(phase, columns):
    root, _, folders = phase
    teams = read_teams([str(folders[name]) for name in (*TEAMS, "flaky")], read_reference(root / "reference.csv"))
    return analyse(teams, columns, n_boot=1000, seed=0)


def test_identical_teams_are_not_separated_and_a_clearly_better_team_is(report):
    names = [team.name for team in report.teams]
    assert names == ["strong", "strong_twin", "flaky", "middling", "weak"]
    assert [place["decided_by"] for place in report.places[:2]] == ["", "submission time"]
    strong, twin, weak = names.index("strong"), names.index("strong_twin"), names.index("weak")
    assert report.significance.p_value[strong, twin] == 1.0 and not report.significance.separated[strong, twin]
    assert report.significance.separated[strong, weak] and report.significance.separated[twin, weak]
    assert report.separated[0] is False  # the twins
    assert report.separated[-1] is True  # middling above weak
    # Holm: every adjusted p-value is at least its raw one, and the family is all 10 pairs
    assert (report.significance.adjusted >= report.significance.p_value).all()


def test_accepted_failures_are_ranked_as_the_scorer_scores_them(phase, report, tmp_path):
    root, _, folders = phase
    flaky = next(team for team in report.teams if team.name == "flaky")
    assert flaky.output.table.unpredicted == 3
    scored = score(folders["flaky"], root, tmp_path)  # score.py: reference.csv in root
    assert flaky.scores == pytest.approx(scored)
    # the grouped errors and blast figures are those of the team's own detailed_results.html
    page = (tmp_path / "detailed_results.html").read_text()
    row = re.search(r"<table id='blast-figures'>.*?<tr data-subset='degraded'>(.*?)</tr>", page).group(1)
    clinical = report.clinical[[team.name for team in report.teams].index("flaky")]
    assert f"<td class='precision-low' data-value='{clinical['precision_interval'][0]!r}'>" in row
    assert clinical["errors"]["no_prediction"] == 3
    strong = next(team for team in report.teams if team.name == "strong")
    assert flaky.scores["degraded_macro_f1"] < strong.scores["degraded_macro_f1"]


def test_rankings_by_severity_and_kendall_tau(report):
    official = np.arange(1, len(report.teams) + 1)
    for key, ranks in report.rankings.items():
        if key != "mean_rank":
            assert ranks.min() == 1 and ranks.max() <= len(official), key
    severities = np.stack([report.rankings[f"severity_{s}_macro_f1"] for s in ("pristine", "mild", "moderate",
                                                                                "extreme")])
    assert report.rankings["mean_rank"] == pytest.approx(severities.mean(axis=0))
    assert all(-1 <= tau <= 1 for tau in report.taus.values())
    assert report.rankings["by_mean_rank"][-1] == len(official)  # the weak team is last by every severity
    assert np.nanmedian(report.replicate_taus) > 0.5


def test_holm_and_the_replicates_it_needs():
    assert holm_adjusted(np.array([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    for teams in (2, 5, 10, 30):
        pairs = teams * (teams - 1) // 2
        n_boot = replicates_needed(teams)
        assert n_boot >= 1000 and 2 / (n_boot + 1) <= 0.05 / pairs / 2
    # at its floor every pair of 45 would be out of reach with the scorer's 1000 replicates
    floor = np.full((10, 10), 2 / 1001)
    np.fill_diagonal(floor, 1.0)
    assert not pairwise_significance(floor).separated.any()


def test_command_writes_the_page_and_its_figures(phase, tmp_path):
    root, _, folders = phase
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "ranking_report.py"),
                          *(f"{name}={folders[name]}" for name in ("strong", "weak", "flaky")),
                          "--reference", str(root), "--out", str(out), "--bootstrap", "300"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    said = re.match(r"(\d) of 2 places separated from the next; wrote ", run.stdout)
    page = (out / "ranking_report.html").read_text()
    verdicts = re.findall(r"<td class='separated' data-value='(True|False)'>", page)
    # flaky is strong with 3 images failed: whether that pair separates is up to the draw (p near 0.05); weak is
    # far below either
    assert said and verdicts[-1] == "True" and int(said[1]) == verdicts.count("True"), (run.stdout, verdicts)
    for section in ("inputs", "method", "official-ranking", "rank-distributions", "significance",
                    "rankings-by-severity", "clinical-errors"):
        assert f"<section id='{section}'>" in page, section
    for figure in ("blob_plot", "significance_map", "rankings_by_severity"):
        assert (out / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"<img id='{figure.replace('_', '-')}'" in page
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "the page must not load anything from elsewhere"
    assert "id='resolution-warning'" not in page  # 2/301 is below Holm's first threshold over 3 pairs, 0.05/3
    places = re.findall(r"<tr data-team='(\w+)'><td class='position'>(\d)</td>", page)
    assert places == [("strong", "1"), ("flaky", "2"), ("weak", "3")]
    assert "<tr data-team='flaky'><td class='name'>flaky</td><td class='name'>" in page
    assert re.search(r"<tr data-team='flaky'>.*?<td class='unpredicted'>3</td>", page)


def test_a_broken_output_names_the_team_and_the_folder(phase, tmp_path):
    root, reference, folders = phase
    broken = write_output(tmp_path / "broken", reference, predictions_frame(reference, 0.1))
    (broken / "predictions.csv").write_text("image_id,set,label\n")
    with pytest.raises(SubmissionOutputError, match=f"^team late: {broken}: predictions.csv has a header but no rows"):
        read_teams([str(folders["strong"]), f"late={broken}"], read_reference(root / "reference.csv"))
    with pytest.raises(RankingError, match="two teams have the same name"):
        read_teams([f"a={folders['strong']}", f"a={folders['weak']}"], read_reference(root / "reference.csv"))


def test_too_few_replicates_for_holm_are_said_on_the_page(report, columns):
    """50 replicates: the smallest p-value, 2/51, is above 0.05 / 10 pairs, so no pair can be separated."""
    few = analyse(report.teams, columns, n_boot=50)
    assert not any(few.separated)
    page = render(few, draw(few), REPO / "reference.csv")
    assert "id='resolution-warning'" in page and f"use the default ({replicates_needed(5)})" in page
