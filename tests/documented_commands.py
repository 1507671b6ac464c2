"""The commands the documentation tells users to run, read from its ```bash blocks, each reduced to a key.

A key names what a command runs: `make <target>`, the script a `python` command starts (`tools/prepare.py`), or the
program (`docker`, `hf`, `zip`). tests/test_documented_commands.py holds the one list of keys the suite runs, and
fails when the documentation names a key that list lacks, so a new command cannot reach the pages untested.
"""
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The files users are told to read, and every bench/ script (their docstrings give their usage).
DOCUMENTS = ("README.md", "ORGANIZERS.md", "CONTRIBUTING.md", "pages/*.md", "docs/*.md", "baselines/README.md",
             "baselines/MEASUREMENTS.md", "starting_kit/README.md", "starting_kit_timm/README.md")
SHELL_WORDS = {"cd", "mkdir", "cp", "for", "do", "done", "then", "fi", "if", ".", "source", "rm", "echo"}
PYTHONS = {"python", "python3", ".venv/bin/python"}


def documents() -> list[Path]:
    """Every documentation file, in a fixed order."""
    return [path for pattern in DOCUMENTS for path in sorted(REPO.glob(pattern))]


def bash_blocks(text: str) -> list[str]:
    """The bodies of the text's ```bash fenced blocks."""
    return re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S)


def simple_commands(block: str) -> list[str]:
    """The block's commands one by one: continuation lines joined, comments dropped, split at && ; | and do."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        commands += [part.strip() for part in re.split(r"&&|;|\|\||\|", line) if part.strip()]
    return commands


def command_key(command: str) -> str | None:
    """What the command runs, or None for shell plumbing (cd, mkdir, a loop's header, an assignment)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    while words and (words[0] in {"do", "then"} or re.match(r"^\w+=", words[0])):
        words = words[1:]  # `do python ...`, `run=... python ...`
    if not words or words[0] in SHELL_WORDS:
        return None
    program = words[0]
    if program in PYTHONS or program.endswith("/python"):
        script = next((word for word in words[1:] if not word.startswith("-")), None)
        return script
    if program == "make":
        target = next((word for word in words[1:] if "=" not in word and not word.startswith("-")), "all")
        return f"make {target}"
    if program == "torchrun":
        return "torchrun " + next(word for word in words[1:] if word.endswith(".py"))
    if program == "docker":
        return "docker " + words[1] + (" " + next(w for w in words if w.endswith(".py")) if words[1] == "run" else "")
    return program if program != "hf" else f"hf {words[1]}"


def inline_commands(text: str) -> list[str]:
    """Commands quoted inline in the prose (`python tools/x.py ...`, `make target`)."""
    return re.findall(r"`((?:\.venv/bin/)?python3? [^`]+|make [a-z][^`]*|docker run [^`]+)`", text)


def documented_commands() -> dict[str, list[str]]:
    """key -> the documentation files (repository-relative) whose bash blocks or inline code run it."""
    found = {}
    for path in documents():
        text = path.read_text(encoding="utf-8")
        for block in bash_blocks(text) + inline_commands(text):
            for command in simple_commands(block):
                key = command_key(command)
                if key:
                    found.setdefault(key, [])
                    if str(path.relative_to(REPO)) not in found[key]:
                        found[key].append(str(path.relative_to(REPO)))
    return found
