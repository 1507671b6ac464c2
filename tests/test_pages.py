"""The pages: every BIAS item answered, every organizer field used, the corrected claims, and the Development size."""
import re

import yaml

from bundle_copies import REPO
from organizer_fields import FIELDS, MARKER, load_organizer, unfilled
from pack import CPU_IMAGES_PER_SECOND, LOAD_SECONDS, SLACK, default_budget

PAGES = ("overview", "data", "evaluation", "terms")
BIAS_ITEMS = ("Challenge name, platform", "Organizers, affiliations, contact", "Endorsement, conflicts of interest",
              "Mission: field, task, target cohort", "Challenge cohort, and how it differs",
              "Algorithm target, assessment aim", "Data origin, cohort, acquisition", "Training and test cases, split",
              "Sample size", "Annotation: who, how, quality control, inter-rater variability",
              "Preprocessing, degradations", "Metrics and justification", "Ranking, ties, missing results",
              "Uncertainty, further analyses", "Submission method, limits, pre-evaluation", "Evaluation software",
              "Challenge life cycle", "Additional data, participation and award policy",
              "Publication and results announcement", "Ethics, data-use agreement, licence")


def page(name: str) -> str:
    return (REPO / "pages" / f"{name}.md").read_text()


def test_every_bias_item_has_a_row_that_points_somewhere():
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", page("overview"), re.M))
    for item in BIAS_ITEMS:
        assert rows.get(item), f"BIAS item '{item}' has no row in pages/overview.md"
    sections = {title for name in PAGES + ("starting_kit",) for title in re.findall(r"^#+ (.+)$", page(name), re.M)}
    for item, answer in rows.items():
        for section in re.findall(r'"([^"]+)"', answer):  # *Page*, "Section" references must exist
            assert section in sections, f"BIAS row '{item}' points to a missing section '{section}'"


def test_every_organizer_field_is_used_and_still_a_placeholder_in_the_repository():
    organizer = load_organizer(REPO / "organizer.yaml")
    assert list(organizer) == list(FIELDS) and unfilled(organizer) == list(FIELDS)
    used = {field for name in PAGES for field in MARKER.findall(page(name))}
    in_yaml = {"queue", "worker_images_per_second"}  # competition.yaml and pack's capacity check
    assert set(FIELDS) - in_yaml <= used
    phase_fields = {f"{phase}_{key}" for phase in ("development", "final")
                    for key in ("start", "end", "max_submissions", "max_submissions_per_day", "time_limit",
                                "time_budget")}
    assert used <= set(FIELDS) | phase_fields | {"bundle_version"}


def test_corrected_claims():
    data, evaluation, overview = page("data"), page("evaluation"), page("overview")
    assert "Xin-Tian/wbcbench2026" in data
    assert "257 labels were corrected, 10 cells removed, and 74" in data
    assert "earlier Kaggle labels" in data and "Kaggle-era labels" in overview
    assert "**public**" in overview and "The Final-phase test set is public" in data
    assert "--phase test=private_test" in data
    assert "each source cell of the phase appears once" in evaluation and "## Each cell is scored once" in data
    assert "re-encoded" in data and "unmodified" not in data + evaluation
    assert "`tools/degrade.py`" in data and "the release's card and `scripts/` folder document them" in data
    assert "~13" not in evaluation and "hidden test" not in overview + data
    assert "phase1_train" in data


def test_development_subsample_fits_the_default_queue():
    """The page's --phase-size (cells: one image each), planned as pack.py plans it, fits the default queue's budget;
    a tenth more does not."""
    cells = int(re.search(r"--phase-size eval=(\d+)", page("data")).group(1))
    assert f"--phase-size eval={cells}" in (REPO / "ORGANIZERS.md").read_text()
    budget = default_budget(600)

    def need(images):
        return LOAD_SECONDS + SLACK * images / CPU_IMAGES_PER_SECOND

    assert need(cells) <= budget < need(int(cells * 1.1))
    config = yaml.safe_load((REPO / "competition.yaml").read_text())
    assert config["phases"][0]["execution_time_limit"] == 600
