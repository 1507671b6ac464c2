"""organizer.yaml: the facts only the organizers can give, which are still placeholders, and filling them in.

A value that starts with "TODO" is a placeholder. A page names a field as {{ name }}; the fields are the
organizer's values plus what competition.yaml says of each phase ({{ final_start }}, {{ development_max_submissions
}}, {{ final_time_limit }}, ...), so a page never repeats a number the yaml owns.
"""
import copy
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from competition_rules import DATE_FORMAT, DATE_PATTERN, MAX_LENGTHS

PLACEHOLDER = "TODO"
DEFAULT_QUEUE = "default"
FIELDS = ("organizers", "contact_email", "endorsement", "conflict_of_interest", "ethics_approval", "prizes",
          "final_test_set", "development_start", "final_start", "final_end", "results_announced", "lifecycle",
          "publication_policy", "annotation", "software_repository", "queue", "worker", "worker_images_per_second")
# The two Final sets an edition can rank on (ORGANIZERS.md, step 0): the sentence the pages show -> whether the
# Final phase is built from the release's public phase2_test (pack.py checks it against the manifest).
FINAL_TEST_SETS = {"the release's phase2_test split, whose labels are public": True,
                   "a private test set held by the organizers": False}
PUBLIC_TEST_SPLIT = "phase2_test"
DATE_FIELDS = ("development_start", "final_start", "final_end")
PHASE_FIELDS = ("start", "end", "max_submissions", "max_submissions_per_day", "execution_time_limit")
MARKER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def load_organizer(path) -> dict:
    """Parse organizer.yaml (a mapping of field -> value)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (the organizer's facts: contact, dates, queue, prizes...)")
    organizer = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(organizer, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    return organizer


def is_placeholder(value) -> bool:
    return value is None or (isinstance(value, str) and (not value.strip() or value.startswith(PLACEHOLDER)))


def unfilled(organizer: dict) -> list:
    """The fields still missing or placeholders, in organizer.yaml's order."""
    return [name for name in FIELDS if is_placeholder(organizer.get(name))]


def check_organizer(organizer: dict) -> list:
    """Problems with the filled fields: each must have the form CodaBench or pack.py needs."""
    problems = [f"organizer.yaml: unknown field '{name}'" for name in organizer if name not in FIELDS]
    filled = {name: organizer[name] for name in FIELDS if not is_placeholder(organizer.get(name))}
    if "contact_email" in filled and not EMAIL.match(str(filled["contact_email"])):
        problems.append(f"organizer.yaml contact_email: {filled['contact_email']!r} is not an e-mail address")
    if "queue" in filled and filled["queue"] != DEFAULT_QUEUE:
        try:
            uuid.UUID(str(filled["queue"]))
        except ValueError:
            problems.append(f"organizer.yaml queue: {filled['queue']!r} is neither a queue vhost (a UUID, "
                            f"CodaBench: Resources > Queues) nor '{DEFAULT_QUEUE}'")
    if len(str(filled.get("prizes", ""))) > MAX_LENGTHS["reward"]:
        problems.append(f"organizer.yaml prizes: {len(str(filled['prizes']))} characters; CodaBench's 'reward' holds "
                        f"at most {MAX_LENGTHS['reward']}: put the details on the pages, a summary here")
    if "worker_images_per_second" in filled and worker_images_per_second(organizer) is None:
        problems.append(f"organizer.yaml worker_images_per_second: {filled['worker_images_per_second']!r} is not a "
                        "positive number")
    if "final_test_set" in filled and filled["final_test_set"] not in FINAL_TEST_SETS:
        problems.append(f"organizer.yaml final_test_set: {filled['final_test_set']!r} is neither of "
                        + " nor ".join(repr(choice) for choice in FINAL_TEST_SETS))
    dates = {}
    for name in DATE_FIELDS:
        if name in filled:
            if isinstance(filled[name], str) and DATE_PATTERN.match(filled[name]):
                dates[name] = datetime.strptime(filled[name], DATE_FORMAT)
            else:
                problems.append(f"organizer.yaml {name}: {filled[name]!r} is not a quoted 'YYYY-MM-DD HH:MM:SS' date")
    if len(dates) == len(DATE_FIELDS) and not dates["development_start"] < dates["final_start"] < dates["final_end"]:
        problems.append("organizer.yaml: development_start, final_start and final_end must be in that order")
    return problems


def worker_images_per_second(organizer: dict):
    """worker_images_per_second as a number (quoted or not, as the template's placeholder is), else None."""
    rate = organizer.get("worker_images_per_second")
    if isinstance(rate, bool) or is_placeholder(rate):
        return None
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        return None
    return rate if rate > 0 and rate != float("inf") else None


def check_final_set(organizer: dict, final_split) -> list:
    """final_test_set against the release split the Final phase was built from (the manifest's)."""
    choice = organizer.get("final_test_set")
    if choice not in FINAL_TEST_SETS or final_split is None or FINAL_TEST_SETS[choice] == (final_split ==
                                                                                          PUBLIC_TEST_SPLIT):
        return []
    return [f"organizer.yaml final_test_set says {choice!r}, but the Final phase was built from the release's "
            f"split '{final_split}' (reference_data/manifest.json); rebuild the data or correct the field"]


def queue_of(organizer: dict):
    """The queue vhost to write into competition.yaml, or None (placeholder, or the default queue)."""
    queue = organizer.get("queue")
    return None if is_placeholder(queue) or queue == DEFAULT_QUEUE else str(queue)


def bundle_config(config: dict, organizer: dict) -> dict:
    """competition.yaml as uploaded: the organizer's filled fields replace the demo values."""
    config = copy.deepcopy(config)
    filled = {name: organizer[name] for name in FIELDS if not is_placeholder(organizer.get(name))}
    if "queue" in filled:
        config["queue"] = queue_of(organizer)
    if "contact_email" in filled:
        config["contact_email"] = filled["contact_email"]
    if "prizes" in filled:
        config["reward"] = str(filled["prizes"])
    phases = sorted(config.get("phases") or [], key=lambda phase: phase.get("index", 0))
    if all(name in filled for name in DATE_FIELDS) and len(phases) == 2:
        development_end = datetime.strptime(filled["final_start"], DATE_FORMAT) - timedelta(seconds=1)
        phases[0].update(start=filled["development_start"], end=development_end.strftime(DATE_FORMAT))
        phases[1].update(start=filled["final_start"], end=filled["final_end"])
    return config


def page_fields(config: dict, organizer: dict, phase_limits: dict, bundle_version: str) -> dict:
    """Every {{ field }} a page may use: the organizer's values, the bundle's version, then per phase
    '<name>_<key>' from the yaml.

    phase_limits: phase name -> (effective execution time limit, time budget) in seconds, as pack.py computed.
    """
    fields = {name: str(organizer.get(name, "")).strip() for name in FIELDS} | {"bundle_version": bundle_version}
    for phase in config.get("phases") or []:
        prefix = str(phase.get("name", "")).lower()
        fields.update({f"{prefix}_{key}": str(phase.get(key, "")) for key in PHASE_FIELDS})
        limit, budget = phase_limits.get(phase.get("name"), ("", ""))
        fields.update({f"{prefix}_time_limit": str(limit), f"{prefix}_time_budget": str(budget)})
    return fields


def render_page(text: str, fields: dict, name: str) -> str:
    """text with every {{ field }} replaced; an unknown field is an error naming the page."""
    unknown = sorted({match for match in MARKER.findall(text) if match not in fields})
    if unknown:
        raise ValueError(f"{name}: unknown field(s) {', '.join('{{ ' + u + ' }}' for u in unknown)} "
                         f"(known: {', '.join(sorted(fields))})")
    return MARKER.sub(lambda match: fields[match.group(1)], text)
