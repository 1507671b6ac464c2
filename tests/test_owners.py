"""Each concept has one owner; where a self-contained program folder forces a copy, the copy must equal the owner.

(Also checked elsewhere: the leaderboard's keys and titles against competition.yaml in test_detailed_results.py,
the run report's two copies in test_ingestion_units.py, the class codes of every kit in test_class_codes.py.)
"""
import shutil

import challenge_labels
import label_space
from competition_rules import leaderboard_keys
from conftest import REPO
from leaderboard_scores import LEADERBOARD_KEYS


def test_the_ingestions_classes_and_sets_are_the_scorers():
    assert challenge_labels.CLASSES == label_space.CLASSES
    assert challenge_labels.SETS == label_space.SETS


def test_the_tools_read_the_keys_from_the_scorer(tmp_path):
    """leaderboard_keys(root) reads <root>'s own scoring program (pack.py checks another bundle's that way): a copy
    whose scorer orders its keys otherwise gives that order, whichever scoring program this process loaded."""
    copy = shutil.copytree(REPO / "scoring_program", tmp_path / "bundle" / "scoring_program",
                           ignore=shutil.ignore_patterns("__pycache__"))
    owner = copy / "leaderboard_scores.py"
    owner.write_text(owner.read_text().replace("LEADERBOARD_KEYS = tuple(LEADERBOARD_TITLES)",
                                               "LEADERBOARD_KEYS = tuple(reversed(LEADERBOARD_TITLES))"))
    assert leaderboard_keys(tmp_path / "bundle") == LEADERBOARD_KEYS[::-1]
    assert leaderboard_keys()[0] == "degraded_macro_f1"  # the primary score, checked at index 0 of competition.yaml
