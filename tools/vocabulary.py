"""The challenge's words (classes, sets, severities) for the tools: read from the scoring program, never copied."""
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1] / "scoring_program"))
from label_space import CLASSES, SETS, SEVERITIES  # noqa: E402,F401
