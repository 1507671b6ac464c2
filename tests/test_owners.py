"""Each concept has one owner; where a self-contained program folder forces a copy, the copy must equal the owner."""
import challenge_labels
import label_space
from competition_rules import leaderboard_keys, load_competition
from conftest import REPO
from leaderboard_scores import LEADERBOARD_KEYS, LEADERBOARD_TITLES


def test_the_ingestions_classes_and_sets_are_the_scorers():
    assert challenge_labels.CLASSES == label_space.CLASSES
    assert challenge_labels.SETS == label_space.SETS


def test_the_leaderboard_columns_are_the_scorers_keys_and_titles_in_order():
    columns = load_competition(REPO / "competition.yaml")["leaderboards"][0]["columns"]
    in_order = sorted(columns, key=lambda column: column["index"])
    assert {column["key"]: column["title"] for column in in_order} == LEADERBOARD_TITLES
    assert [column["key"] for column in in_order] == list(LEADERBOARD_KEYS)


def test_the_tools_read_the_keys_from_the_scorer():
    assert leaderboard_keys() == LEADERBOARD_KEYS


def test_the_run_report_copies_are_identical():
    owner = (REPO / "ingestion_program" / "run_report.py").read_text(encoding="utf-8")
    assert (REPO / "scoring_program" / "run_report.py").read_text(encoding="utf-8") == owner
