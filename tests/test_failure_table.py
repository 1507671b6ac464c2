"""Every message in pages/starting_kit.md's failure tables is text the programs print.

Each table row gives a message with example values (a file name, a count, an exception). The test covers the
message, left to right, with the longest pieces of the programs' string literals (string constants and the literal
runs of f-strings, implicit concatenation joined as Python joins it). What no literal covers must be example values:
placeholders, numbers, quoted values, Python's exception text, file names, or a word of EXAMPLES (an id, a column
name). A message reworded in the code or in the page leaves words uncovered, and the row is named. The
missing-package message is also triggered; tests/test_scoring_failures.py and tests/test_ingestion_runs.py run the
programs for the others.
"""
import ast
import re
from pathlib import Path

import pytest

from requirements_check import check_requirements, missing_package_message

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "pages" / "starting_kit.md"
CODE_FOLDERS = ("ingestion_program", "scoring_program", "tools")
# Example values in the page's messages, not text of the code: placeholders, elisions, quoted values, numbers,
# Python's own exception text, file and folder names, class codes and probability columns.
VARIABLE = re.compile(
    r"<[^>]*>|…|\.\.\.|'[^']*'|\"[^\"]*\""
    r"|\b[A-Z]\w*(?:Error|Exception): .*?(?= \(\w+\.py[:,]|$)"
    r"|[\w./-]*\.(?:py|csv|json|log|jpg|zip|txt|pt|md)\b|\b\w+/|prob_\w+|\b[A-Z]{2,4}\b|\d+(?:\.\d+)?%?")
MIN_PIECE = 12  # characters: a shorter piece of a literal could match anywhere
# The example values the page's messages use between literal pieces (ids, column and class names, counts).
EXAMPLES = {"a", "b", "c", "d", "e", "X", "N", "int", "confidence", "label", "Predictor", "predict", "pristine",
            "degraded", "KeyboardInterrupt", "generator", "Tensor", "SIGTERM"}
ATTACK_HEADER = "| what the submission does"  # that table's outcomes may be a plain result with no message
SLOT = "\x00"


def table_rows(page_text: str) -> list[tuple[str, list[str], bool]]:
    """(situation, messages, needs a message) of every table row under '## Failure messages'.

    Messages are the code spans of the last cell. Rows of the hostile-submission table may end in a plain result
    ("nothing: ...") instead of a message; every other row must quote one.
    """
    section = page_text[page_text.index("## Failure messages"):]
    rows, needs_message = [], True
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            if line.startswith(("| situation", ATTACK_HEADER)):
                needs_message = not line.startswith(ATTACK_HEADER)
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            rows.append((cells[0], re.findall(r"`([^`]+)`", cells[-1]), needs_message))
    return rows


def uncovered_words(message: str, literals: str, runs: set[str]) -> list[str]:
    """Words of `message` that neither a piece of a literal nor a known example value accounts for.

    A piece counts when it is long (MIN_PIECE), a whole literal run (text between two f-string fields), or
    reaches an example value or the end of the message. The message is split into pieces so that as few words
    as possible stay uncovered (a greedy longest match can swallow the start of the next literal).
    """
    text = VARIABLE.sub(SLOT, message)
    tokens = [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]

    def is_piece(k: int, j: int) -> bool:
        piece = text[tokens[k][0]:tokens[j][1]]
        after = tokens[j + 1][0] if j + 1 < len(tokens) else len(text)
        return piece in literals and (len(piece) >= MIN_PIECE or piece.strip() in runs or after == len(text)
                                      or text[after] == SLOT)

    best: list[list[int]] = [[] for _ in tokens] + [[]]  # best[k]: fewest uncovered token indexes from k on
    for k in reversed(range(len(tokens))):
        options = [[k] + best[k + 1]] + [best[j + 1] for j in range(k, len(tokens)) if is_piece(k, j)]
        best[k] = min(options, key=len)
    words = [text[tokens[k][0]:tokens[k][1]] for k in best[0]]
    return [word for word in words if re.match(r"[A-Za-z]", word) and word not in EXAMPLES]


def code_literals() -> list[str]:
    """Every string literal, and every literal run of an f-string, in the programs' Python files."""
    literals = []
    for folder in CODE_FOLDERS:
        for path in sorted((REPO / folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    literals.append(node.value)
    return literals


ROWS = table_rows(PAGE.read_text(encoding="utf-8"))
LITERALS = code_literals()
JOINED, RUNS = "\x01".join(LITERALS), {literal.strip() for literal in LITERALS}


def test_the_page_has_failure_tables():
    assert len(ROWS) >= 40, f"only {len(ROWS)} failure-table rows found in {PAGE}"


@pytest.mark.parametrize("situation, messages, needs_message", ROWS, ids=[row[0][:60] for row in ROWS])
def test_every_message_of_the_table_is_in_the_code(situation, messages, needs_message):
    assert messages or not needs_message, f"the row '{situation}' gives no message in backticks"
    missing = [word for message in messages for word in uncovered_words(message, JOINED, RUNS)]
    assert not missing, f"row '{situation}': words no program prints: {missing}"


@pytest.mark.parametrize("reworded, words", [
    ("predict returned a lone int value (expected …)", ["lone"]),
    ("predictions.csv: 2 row(s) have a blank image_id", ["blank"]),
    ("no model file in the submission (looked at the top and one folder down; found: README.md, weights/); put "
     "model.py at the top of your zip", ["no", "model"]),
    ("invented message about penguins", ["invented", "message", "about", "penguins"]),
])
def test_a_reworded_message_is_caught(reworded, words):
    assert uncovered_words(reworded, JOINED, RUNS) == words


def test_the_missing_package_message_is_the_pages():
    """Triggered: the row's message is exactly what requirements_check words, with and without the listing."""
    (row,) = [messages for situation, messages, _ in ROWS if "not in the image" in situation]
    entries = check_requirements("opencv-python-headless>=4\n")
    assert missing_package_message("cv2") == row[0]
    assert missing_package_message("cv2", entries) == row[0] + row[-1]
