"""CodaBench v2 competition.yaml rules (what the uploader and the worker reject or silently mishandle).

check_competition: the uploader's rules (codalab/codabench src/apps/competitions/unpackers/, the serializers'
field sizes) and the keys it would default silently. check_time_limits: the worker's cap on a competition
without a queue (competitions/tasks.py), checked by tools/pack.py on the bundle's final yaml.
"""
import json
import re
import subprocess
import sys
import uuid
from datetime import date, datetime
from pathlib import Path

import yaml

import project_folders  # the program folders, tools/ and baselines/ importable by name

REQUIRED_KEYS = ("version", "title", "image", "terms", "pages", "docker_image", "tasks", "phases", "leaderboards")
TASK_FOLDERS = ("ingestion_program", "input_data", "scoring_program", "reference_data")
PROGRAMS = ("ingestion_program", "scoring_program")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SORTINGS = ("asc", "desc")
# The platform's cap on execution_time_limit for a competition without a queue (MAX_EXECUTION_TIME_LIMIT in
# CodaBench's competitions/tasks.py: 600 s by default, 1200 s on codabench.org), and a phase's limit when unset.
DEFAULT_QUEUE_LIMIT = 600
PHASE_DEFAULT_LIMIT = 600
# Keys the V2 unpacker fills in silently when they are missing, with the value it uses (unpackers/v2.py).
# Each must be written out, so that the choice is visible and explained (pages/evaluation.md, competition.yaml).
SILENT_DEFAULTS = {
    "competition": {"registration_auto_approve": False, "enable_detailed_results": False,
                    "show_detailed_results_in_submission_panel": True, "show_detailed_results_in_leaderboard": True,
                    "auto_run_submissions": True, "can_participants_make_submissions_public": True,
                    "make_programs_available": False, "make_input_data_available": False,
                    "competition_type": "competition", "fact_sheet": None, "reward": None, "contact_email": None,
                    "forum_enabled": True, "queue": None},
    "phase": {"execution_time_limit": PHASE_DEFAULT_LIMIT, "max_submissions_per_day": 5, "max_submissions": 100,
              "auto_migrate_to_this_phase": False, "hide_output": False, "hide_prediction_output": False,
              "hide_score_output": False},
    "task": {"ingestion_only_during_scoring": False},
}
# Database column sizes (CharField max_length) the uploader's serializers enforce.
MAX_LENGTHS = {"title": 256, "docker_image": 128, "reward": 256, "phase name": 256, "task name": 256, "leaderboard title": 64,
               "leaderboard key": 36, "column title": 36, "column key": 36}


REPO = project_folders.REPO
# Run in a scoring program's folder: prints the keys of its leaderboard_scores.py.
KEYS_PROGRAM = ("import json, sys; sys.path.insert(0, ''); import leaderboard_scores; "
                "print(json.dumps(leaderboard_scores.LEADERBOARD_KEYS))")


def leaderboard_keys(root: Path = REPO) -> tuple[str, ...]:
    """The keys <root>/scoring_program/score.py writes, primary first, from its leaderboard_scores.py (their owner).

    A scoring program whose files differ from this repository's is read in an interpreter of its own: in this one,
    the scoring program's module names are this repository's (tools/project_folders.py). ValueError when it cannot
    be read.
    """
    folder = Path(root).resolve() / "scoring_program"
    if _python_files(folder) == _python_files(project_folders.SCORING_PROGRAM):
        import leaderboard_scores

        return tuple(leaderboard_scores.LEADERBOARD_KEYS)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not found, so the leaderboard keys cannot be read")
    done = subprocess.run([sys.executable, "-c", KEYS_PROGRAM], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"{folder}/leaderboard_scores.py: its leaderboard keys cannot be read:\n{done.stderr[-2000:]}")
    return tuple(json.loads(done.stdout))


def _python_files(folder: Path) -> dict[str, bytes]:
    """A folder's Python files by name, their bytes as values."""
    return {path.name: path.read_bytes() for path in sorted(Path(folder).glob("*.py"))}


def load_competition(path: Path) -> dict:
    """Parse competition.yaml as the uploader does (yaml.safe_load): an unquoted date reads as a datetime."""
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return config


def referenced_paths(config: dict) -> list:
    """Every bundle-relative path competition.yaml points at (pages, terms, logo, task folders, solutions, kits)."""
    paths = [config.get("image"), config.get("terms")]
    paths += [page.get("file") for page in config.get("pages") or [] if isinstance(page, dict)]
    for task in config.get("tasks") or []:
        if isinstance(task, dict):
            paths += [task.get(kind) for kind in TASK_FOLDERS]
    paths += [solution.get("path") for solution in config.get("solutions") or [] if isinstance(solution, dict)]
    for phase in config.get("phases") or []:
        if isinstance(phase, dict):
            paths += [phase.get("starting_kit"), phase.get("public_data")]
    return sorted({str(path).rstrip("/") for path in paths if path})


def _check_file(root, value, what, problems):
    if not value:
        problems.append(f"{what}: missing")
    elif not (root / str(value)).is_file():
        problems.append(f"{what}: file '{value}' not found in the bundle")
    elif not (root / str(value)).read_bytes().strip():
        problems.append(f"{what}: file '{value}' is empty (CodaBench rejects empty pages)")


def _check_program(root, folder, what, problems):
    metadata_yaml = root / folder / "metadata.yaml"
    if not metadata_yaml.is_file():
        problems.append(f"{what}: '{folder}/metadata.yaml' not found (the worker needs its command)")
    else:
        command = (yaml.safe_load(metadata_yaml.read_text(encoding="utf-8")) or {}).get("command")
        if not command:
            problems.append(f"{what}: '{folder}/metadata.yaml' has no 'command'")
    for path in (root / folder).rglob("metadata"):
        problems.append(f"{what}: '{path.relative_to(root)}' is named 'metadata': the worker reads it as the "
                        "program's metadata and writes its own file of that name into the output")


def _mappings(items, name, problems, label=None):
    """(what, item) for each mapping of a yaml list, `what` naming it in messages; other entries are reported."""
    for position, item in enumerate(items or []):
        what = f"{name}[{position}]"
        if label:
            what += f" ({item.get(label, '?') if isinstance(item, dict) else '?'})"
        if isinstance(item, dict):
            yield what, item
        else:
            problems.append(f"{what}: expected a mapping")


def _check_tasks(config, root, problems):
    indices = set()
    for what, task in _mappings(config.get("tasks"), "tasks", problems):
        if not isinstance(task.get("index"), int) or task["index"] in indices:
            problems.append(f"{what}: 'index' missing, not an integer or duplicated")
        indices.add(task.get("index"))
        if "key" in task:
            continue
        if not task.get("scoring_program"):
            problems.append(f"{what}: no scoring_program")
        for kind in TASK_FOLDERS:
            value = task.get(kind)
            if value is None:
                continue
            path = root / str(value)
            if path.is_file():
                problems.append(f"{what}.{kind}: '{value}' is a plain file; reference a folder (the uploader "
                                "zips folders; a plain file is handed to the worker as is)")
            elif not path.is_dir():
                problems.append(f"{what}.{kind}: folder '{value}' not found in the bundle")
            elif not any(path.iterdir()):
                problems.append(f"{what}.{kind}: folder '{value}' is empty")
            elif kind in PROGRAMS:
                _check_program(root, str(value), f"{what}.{kind}", problems)
    return indices


def _parse_date(value, what, problems):
    if isinstance(value, (date, datetime)):
        problems.append(f"{what}: {value} is unquoted, so YAML reads it as a timestamp and CodaBench moves it to "
                        f"midnight of its day; quote it: \"{value:%Y-%m-%d %H:%M:%S}\"")
        return None
    if not isinstance(value, str) or not DATE_PATTERN.match(value):
        problems.append(f"{what}: {value!r} is not a 'YYYY-MM-DD HH:MM:SS' date (quoted, e.g. \"2026-01-15 00:00:00\")")
        return None
    try:
        return datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        problems.append(f"{what}: {value!r} is not a valid date")
        return None


def _check_phases(config, root, task_indices, problems):
    phases = config.get("phases") or []
    if not phases:
        problems.append("phases: none defined")
    dated = []
    for position, (what, phase) in enumerate(_mappings(phases, "phases", problems, label="name")):
        for key in ("name", "start", "tasks"):
            if key not in phase:
                problems.append(f"{what}: missing '{key}'")
        tasks = phase.get("tasks") or []
        if not tasks or any(index not in task_indices for index in tasks):
            problems.append(f"{what}: tasks {tasks} must list existing task indices {sorted(task_indices)}")
        start = _parse_date(phase.get("start"), f"{what}.start", problems) if "start" in phase else None
        end = _parse_date(phase.get("end"), f"{what}.end", problems) if phase.get("end") is not None else None
        if start and end and end <= start:
            problems.append(f"{what}: end {phase['end']} is not after start {phase['start']}")
        limit = phase.get("execution_time_limit")
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            problems.append(f"{what}: execution_time_limit {limit!r} must be a positive number of seconds")
        for kind in ("starting_kit", "public_data"):
            if phase.get(kind) and not (root / str(phase[kind])).exists():
                problems.append(f"{what}.{kind}: '{phase[kind]}' not found in the bundle")
        dated.append((phase.get("index", position), what, start, end, phase.get("end")))
    dated.sort(key=lambda item: item[0])
    for (_, what, _, end, end_text), (_, next_what, next_start, _, _) in zip(dated, dated[1:]):
        if end_text is None:
            problems.append(f"{what}: needs an end date because {next_what} follows it")
        elif end and next_start and next_start < end:
            problems.append(f"{next_what}: starts before {what} ends (phases must be sequential)")
        elif end and next_start and next_start == end:
            problems.append(f"{next_what}: starts exactly when {what} ends; CodaBench rejects equal dates")


def _check_leaderboards(config, problems):
    leaderboards = config.get("leaderboards") or []
    if not leaderboards:
        problems.append("leaderboards: none defined")
    for position, (what, board) in enumerate(_mappings(leaderboards, "leaderboards", problems)):
        for key in ("title", "key", "columns"):
            if not board.get(key):
                problems.append(f"{what}: missing '{key}'")
        indices, keys = {}, set()
        for column_what, column in _mappings(board.get("columns"), f"{what}.columns", problems):
            for key in ("title", "key", "index", "sorting"):
                if key not in column:
                    problems.append(f"{column_what}: missing '{key}'")
            if column.get("sorting") not in SORTINGS:
                problems.append(f"{column_what}: sorting {column.get('sorting')!r}, expected one of {SORTINGS}")
            if not isinstance(column.get("index"), int) or column["index"] in indices:
                problems.append(f"{column_what}: index {column.get('index')!r} missing, not an integer or duplicated")
            else:
                indices[column["index"]] = column.get("key")
            if column.get("key") in keys:
                problems.append(f"{column_what}: duplicate key {column.get('key')!r}")
            keys.add(column.get("key"))
        primary = leaderboard_keys()[0]
        if position == 0 and indices.get(0) != primary:
            problems.append(f"{what}: column index 0 is {indices.get(0)!r}; the primary score {primary!r} "
                            "must be at index 0")


def _check_docker_image(config, problems):
    image = str(config.get("docker_image") or "")
    name, _, tag = image.rpartition(":")
    if not image or "/" in tag or not name:
        problems.append(f"docker_image: {image!r} has no tag; pin an exact tag (not ':latest')")
    elif tag == "latest":
        problems.append(f"docker_image: {image!r} uses ':latest'; pin an exact tag so every run uses the same image")


def _check_explicit_keys(config, problems):
    """Every key the unpacker would default silently is written out (the choice is then deliberate)."""
    ignored = []  # entries that are not mappings are reported by the other checks
    places = [("", config, "competition")]
    places += [(f"{what}: ", phase, "phase") for what, phase in _mappings(config.get("phases"), "phases", ignored,
                                                                        label="name")]
    places += [(f"{what}: ", task, "task") for what, task in _mappings(config.get("tasks"), "tasks", ignored)
               if "key" not in task]
    for prefix, mapping, level in places:
        problems += [f"{prefix}'{key}' not set: CodaBench silently uses {default!r}; write the choice out"
                     for key, default in SILENT_DEFAULTS[level].items() if key not in mapping]


def _check_lengths(config, problems):
    """Titles and keys fit the database columns CodaBench stores them in."""
    ignored = []
    values = [("title", "title", config.get("title")), ("docker_image", "docker_image", config.get("docker_image"))]
    values += [(f"{what}.name", "phase name", p.get("name")) for what, p in _mappings(config.get("phases"), "phases",
                                                                                      ignored)]
    values += [(f"{what}.name", "task name", t.get("name")) for what, t in _mappings(config.get("tasks"), "tasks",
                                                                                     ignored)]
    for what, board in _mappings(config.get("leaderboards"), "leaderboards", ignored):
        values += [(f"{what}.title", "leaderboard title", board.get("title")),
                   (f"{what}.key", "leaderboard key", board.get("key"))]
        for column_what, column in _mappings(board.get("columns"), f"{what}.columns", ignored):
            values += [(f"{column_what}.title", "column title", column.get("title")),
                       (f"{column_what}.key", "column key", column.get("key"))]
    problems += [f"{what}: {value!r} has {len(value)} characters; CodaBench stores at most {MAX_LENGTHS[kind]} "
                 f"({kind})" for what, kind, value in values
                 if isinstance(value, str) and len(value) > MAX_LENGTHS[kind]]


def _check_queue(config, problems):
    queue = config.get("queue")
    if queue is None:
        return
    try:
        uuid.UUID(str(queue))
    except ValueError:
        problems.append(f"queue: {queue!r} is not a queue vhost; the uploader looks the queue up by its vhost, a UUID "
                        "(CodaBench: Resources > Queues), and refuses the bundle otherwise")


def effective_time_limit(config: dict, phase: dict, default_queue_limit: int = DEFAULT_QUEUE_LIMIT) -> int:
    """Seconds the worker gives each step of the phase: its execution_time_limit, capped when there is no queue."""
    declared = int(phase.get("execution_time_limit") or PHASE_DEFAULT_LIMIT)
    return declared if config.get("queue") else min(declared, default_queue_limit)


def check_time_limits(config: dict, default_queue_limit: int = DEFAULT_QUEUE_LIMIT) -> list:
    """Without a queue every step runs on the platform's default queue, whose cap overrides a longer limit."""
    if config.get("queue"):
        return []
    return [f"{what}: execution_time_limit {phase['execution_time_limit']} s, but competition.yaml names no queue: "
            f"the default queue stops every step at {default_queue_limit} s. Name the organizer's queue "
            f"(organizer.yaml 'queue') or declare at most {default_queue_limit} s"
            for what, phase in _mappings(config.get("phases"), "phases", [], label="name")
            if int(phase.get("execution_time_limit") or PHASE_DEFAULT_LIMIT) > default_queue_limit]


def check_competition(config: dict, root: Path) -> list:
    """All v2 rule violations of a parsed competition.yaml whose paths are relative to root (empty = fine)."""
    root = Path(root)
    problems = [f"missing required key '{key}'" for key in REQUIRED_KEYS if key not in config]
    if config.get("version") != 2:
        problems.append(f"version: {config.get('version')!r}, expected 2")
    _check_file(root, config.get("image"), "image (logo)", problems)
    _check_file(root, config.get("terms"), "terms", problems)
    for position, page in enumerate(config.get("pages") or []):
        if not isinstance(page, dict) or not page.get("title"):
            problems.append(f"pages[{position}]: needs 'title' and 'file'")
        else:
            _check_file(root, page.get("file"), f"pages[{position}] ({page['title']})", problems)
    if config.get("enable_detailed_results") is not True:
        problems.append("enable_detailed_results: must be true (the scoring program writes detailed_results.html)")
    task_indices = _check_tasks(config, root, problems)
    for position, solution in enumerate(config.get("solutions") or []):
        if not isinstance(solution, dict) or not solution.get("path") or "index" not in solution:
            problems.append(f"solutions[{position}]: needs 'index', 'path' and 'tasks'")
            continue
        if any(index not in task_indices for index in solution.get("tasks") or [None]):
            problems.append(f"solutions[{position}]: tasks {solution.get('tasks')} must list existing task indices")
        if not (root / str(solution["path"])).exists():
            problems.append(f"solutions[{position}]: '{solution['path']}' not found in the bundle")
    _check_phases(config, root, task_indices, problems)
    _check_leaderboards(config, problems)
    _check_docker_image(config, problems)
    _check_explicit_keys(config, problems)
    _check_lengths(config, problems)
    _check_queue(config, problems)
    return problems


def check_score_keys(config: dict, score_keys: tuple[str, ...]) -> list:
    """Leaderboard column keys must equal the scores.json keys: CodaBench drops unknown keys without a word."""
    column_keys = [column.get("key") for board in config.get("leaderboards") or [] if isinstance(board, dict)
                   for column in board.get("columns") or [] if isinstance(column, dict)]
    problems = [f"leaderboard column '{key}' is not a key score.py writes ({', '.join(score_keys)})"
                for key in column_keys if key not in score_keys]
    problems += [f"score.py writes '{key}', which no leaderboard column shows" for key in score_keys
                 if key not in column_keys]
    return problems
