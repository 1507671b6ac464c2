"""The /app paths have one owner (tools/worker_paths.py): both metadata.yaml commands must spell them as it does."""
import yaml

import worker_paths
from conftest import REPO


def _command(program: str) -> str:
    return yaml.safe_load((REPO / program / "metadata.yaml").read_text(encoding="utf-8"))["command"]


def test_the_ingestion_command_is_the_owners():
    assert _command("ingestion_program") == worker_paths.INGESTION_COMMAND


def test_the_scoring_command_is_the_owners():
    assert _command("scoring_program") == worker_paths.SCORING_COMMAND


def test_the_commands_use_only_the_owners_paths():
    paths = {value for name, value in vars(worker_paths).items() if name.isupper() and value.startswith("/app")}
    for program in ("ingestion_program", "scoring_program"):
        used = {token.rstrip("/") for token in _command(program).split() if token.startswith("/app")}
        used = {path.rsplit("/", 1)[0] if path.endswith(".py") else path for path in used}
        assert used <= paths, (program, used - paths)
