"""Each concept has one owner; where a self-contained program folder forces a copy, the copy must equal the owner.

(Also checked elsewhere: the leaderboard's keys and titles against competition.yaml in test_detailed_results.py,
the run report's two copies in test_ingestion_units.py, the class codes of every kit in test_class_codes.py.)
"""
import challenge_labels
import label_space
from competition_rules import leaderboard_keys
from leaderboard_scores import LEADERBOARD_KEYS


def test_the_ingestions_classes_and_sets_are_the_scorers():
    assert challenge_labels.CLASSES == label_space.CLASSES
    assert challenge_labels.SETS == label_space.SETS


def test_the_tools_read_the_keys_from_the_scorer():
    assert leaderboard_keys() == LEADERBOARD_KEYS
    assert leaderboard_keys()[0] == "degraded_macro_f1"  # the primary score, checked at index 0 of competition.yaml
