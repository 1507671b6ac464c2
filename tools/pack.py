"""Check and zip the bundle for CodaBench upload (dist/bundle.zip) and the ready-to-upload submission zips.

The bundle's competition.yaml and pages are filled from organizer.yaml; every task's input_data gets a
time_budget.json ({"seconds": N}) below the time limit the worker really applies to its phase (600 s on the
default queue, the declared limit on the organizer's queue), so the ingestion stops itself, with a run report,
before the worker kills it. pack refuses, one line per reason, a bundle that breaks a CodaBench rule, still
has organizer placeholders, carries the demo data or seed 0, or has a phase that cannot finish: a time budget
not below its limit, or more images than the slowest baseline it serves predicts inside the budget twice over
(organizer.yaml's worker_images_per_second on the organizer's queue; on the default queue a planning rate for the
ResNet-50 with its 8-view TTA, slower than either shipped CPU baseline).
"""
import argparse
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from competition_rules import (DEFAULT_QUEUE_LIMIT, check_competition, check_score_keys, check_time_limits,
                               effective_time_limit, leaderboard_keys, load_competition, referenced_paths)
from fixed_zip import folder_entries, write_zip
from organizer_fields import (bundle_config, check_final_set, check_organizer, load_organizer, page_fields,
                              render_page, unfilled, worker_images_per_second)
from pack_baseline import pack_submission

REPO = Path(__file__).resolve().parents[1]
BUDGET_FILE = "time_budget.json"
# Planning throughput of the default CPU queue: the ResNet-50 baseline (224 px, d4 TTA: 8 network passes per
# image) on 2 CPU cores, from "a timm resnet50 forward on 8 images at 224 px takes about 0.8 s on 2 cores"
# (10 passes/s): a planning figure. docs/speed.md compares it with measurements; ORGANIZERS.md says how to
# measure a worker.
CPU_IMAGES_PER_SECOND = 1.25
LOAD_SECONDS = 30  # container start, imports, Model() and load() before the first image
SLACK = 2  # a phase must fit twice over: a slower or busier worker, a heavier model than the baseline
MIN_HEADROOM = 30  # seconds between the budget and the limit: the ingestion writes its report after the budget


class PackError(Exception):
    """The bundle is not fit for upload; the message lists every reason."""


@dataclass
class Bundle:
    """What pack writes: the final competition.yaml, the filled pages, each input folder's time budget."""

    config: dict
    pages: dict = field(default_factory=dict)  # bundle-relative path -> filled page text
    budgets: dict = field(default_factory=dict)  # input_data folder -> seconds
    notes: list = field(default_factory=list)


def bundle_version(root: Path) -> str:
    """The evaluation software's version for the pages: the git commit of the bundle folder, marked when the
    working tree has changes git does not hold (BIAS asks for the version of the software that scored)."""
    def git(*args):
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return "not recorded (the bundle was packed outside a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes" if git("status", "--porcelain") else "")


def default_budget(limit: int) -> int:
    """The time budget for a step limit: a tenth of it (at least 60 s) is left for start-up and the report."""
    return limit - max(60, limit // 10)


def count_images(folder: Path) -> int:
    """Images in the folder's input zips (both sets), as the ingestion will see them."""
    total = 0
    for path in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            total += sum(1 for name in archive.namelist() if not name.endswith("/") and "__MACOSX" not in name
                         and not Path(name).name.startswith("."))
    return total


def _check_data(config, root, demo, organizer, problems):
    """Bundle data built by prepare.py, complete for every task, not the demo data nor seed 0 unless --demo, its
    Final phase the set organizer.yaml says."""
    manifest_path = root / "reference_data" / "manifest.json"
    if not manifest_path.is_file():
        problems.append(f"{manifest_path}: not found; build the data first (python tools/prepare.py RELEASE --out .)")
    else:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        problems += check_final_set(organizer, _final_split(config, manifest))
        if manifest.get("demo", True) and not demo:
            problems.append(f"{manifest_path}: the data is the synthetic demo data (demo: true); build it from the "
                            "release with tools/prepare.py, or pass --demo to pack it anyway")
        elif manifest.get("seed", 0) == 0 and not demo:
            problems.append(f"{manifest_path}: the data was prepared with seed 0, which anyone can replay from the "
                            "public code; rebuild it with a private --seed")
    for task in config.get("tasks") or []:
        for kind, names in (("input_data", ("pristine.zip", "degraded.zip")), ("reference_data", ("reference.csv",))):
            folder = root / str(task.get(kind, ""))
            if task.get(kind) and folder.is_dir():
                problems += [f"task {task.get('name')}: {task[kind]}/{name} missing" for name in names
                             if not (folder / name).is_file()]
    _check_cells_once(config, root, problems)


def _final_split(config, manifest):
    """The release split the last phase's data was built from, as the manifest records it (None if unknown)."""
    phases = sorted(config.get("phases") or [], key=lambda phase: phase.get("index", 0))
    tasks = {task.get("index"): task for task in config.get("tasks") or [] if isinstance(task, dict)}
    folders = [str((tasks.get(index) or {}).get("input_data", "")) for index in (phases[-1].get("tasks") or [])] \
        if phases else []
    entries = [manifest.get("phases", {}).get(Path(folder).name) for folder in folders if folder]
    return next((entry.get("split") for entry in entries if isinstance(entry, dict)), None)


def _check_cells_once(config, root, problems):
    """Every reference passes the scorer's own checks (each cell once per phase among them), and no cell is in two
    phases: a model that met a cell in Development could remember it in Final."""
    from reference_file import read_reference  # the scorer's reader is the check (imported when needed: pandas)
    from scoring_errors import ReferenceDataError

    seen = {}
    for folder in dict.fromkeys(str(task.get("reference_data", "")) for task in config.get("tasks") or []):
        path = root / folder / "reference.csv"
        if not folder or not path.is_file():
            continue
        try:
            cells = set(read_reference(path)["cell_id"])
        except ReferenceDataError as error:
            problems.append(str(error))
            continue
        for other, other_cells in seen.items():
            shared = sorted(cells & other_cells)
            if shared:
                problems.append(f"{path}: {len(shared)} cell(s) also in {other}, e.g. cell_id '{shared[0]}'; each "
                                "cell belongs to one phase (prepare.py builds phases from patient-disjoint splits)")
        seen[str(path)] = cells


def _phase_budget(name, folder, limit, overrides, problems):
    """The phase's budget: --time-budget, else a time_budget.json already in its input folder, else the default."""
    if name in overrides:
        return overrides[name], "--time-budget"
    existing = folder / BUDGET_FILE
    if existing.is_file():
        try:
            return json.loads(existing.read_text(encoding="utf-8"))["seconds"], str(existing)
        except (ValueError, KeyError, TypeError):
            problems.append(f"{existing}: expected {{\"seconds\": N}}")
    return default_budget(limit), "default"


def _plan_phases(bundle, root, organizer, *, demo, default_queue_limit, overrides, cpu_rate, problems):
    """Each phase's effective limit and time budget; refuse a budget not below the limit or a phase too big."""
    config = bundle.config
    queue = config.get("queue")
    rate = worker_images_per_second(organizer) if queue else cpu_rate
    where = "on the organizer's worker (organizer.yaml)" if queue else "planned for the default CPU queue"
    tasks = {task.get("index"): task for task in config.get("tasks") or [] if isinstance(task, dict)}
    limits = {}
    for phase in config.get("phases") or []:
        name = phase.get("name")
        limit = effective_time_limit(config, phase, default_queue_limit)
        capped = "" if queue or limit == phase.get("execution_time_limit") else ", capped by the default queue"
        for index in phase.get("tasks") or []:
            folder_name = str((tasks.get(index) or {}).get("input_data", ""))
            folder = root / folder_name
            if not folder_name or not folder.is_dir():
                continue
            budget, source = _phase_budget(name, folder, limit, overrides, problems)
            number = isinstance(budget, (int, float)) and not isinstance(budget, bool)
            if not number or not 0 < budget <= limit - MIN_HEADROOM:
                problems.append(f"phase {name}: time budget {budget!r} s ({source}) is not below its {limit} s limit"
                                f"{capped} by at least {MIN_HEADROOM} s: the worker would stop the ingestion before "
                                f"it writes its report; use at most {limit - MIN_HEADROOM} s")
                continue
            bundle.budgets[folder_name] = min(budget, bundle.budgets.get(folder_name, budget))
            limits[name] = (limit, bundle.budgets[folder_name])
            if rate is None:
                bundle.notes.append(f"phase {name}: capacity not checked (organizer.yaml worker_images_per_second "
                                    "is a placeholder)")
                continue
            images = count_images(folder)
            need = LOAD_SECONDS + SLACK * images / rate
            if need > budget:
                fits = int((budget - LOAD_SECONDS) * rate / SLACK)
                message = (f"phase {name}: {images} images at {rate:g} images/s {where} need about {need:.0f} s with a "
                           f"{SLACK}x margin, more than its {budget} s time budget (limit {limit} s{capped}; about "
                           f"{fits} images fit); attach "
                           "a GPU queue (organizer.yaml 'queue') or make the phase smaller "
                           f"(tools/prepare.py --phase-size {Path(folder_name).name}=N)")
                (bundle.notes if demo else problems).append(message + (" [--demo: not refused]" if demo else ""))
    return limits


def check_bundle(root=REPO, *, demo=False, default_queue_limit=DEFAULT_QUEUE_LIMIT, time_budgets=None,
                 cpu_images_per_second=CPU_IMAGES_PER_SECOND) -> Bundle:
    """Build the bundle's yaml, pages and budgets, and raise PackError listing every problem."""
    root = Path(root)
    config_path = root / "competition.yaml"
    if not config_path.is_file():
        raise PackError(f"{config_path}: not found")
    try:
        organizer = load_organizer(root / "organizer.yaml")
    except (OSError, ValueError) as error:
        raise PackError(str(error)) from None
    problems = check_organizer(organizer)
    placeholders = unfilled(organizer)
    if placeholders and not demo:
        problems.append(f"organizer.yaml: still placeholders: {', '.join(placeholders)}; fill them (or pass --demo "
                        "to pack a demo bundle that shows them)")
    bundle = Bundle(bundle_config(load_competition(config_path), organizer))
    if demo and not bundle.config.get("queue"):
        for phase in bundle.config.get("phases") or []:
            if phase.get("execution_time_limit", 0) > default_queue_limit:
                bundle.notes.append(f"phase {phase.get('name')}: no queue in a demo bundle: execution_time_limit "
                                    f"{phase['execution_time_limit']} s lowered to the default queue's "
                                    f"{default_queue_limit} s")
                phase["execution_time_limit"] = default_queue_limit
    problems += check_competition(bundle.config, root)
    problems += check_time_limits(bundle.config, default_queue_limit)
    try:
        problems += check_score_keys(bundle.config, leaderboard_keys(root))
    except ValueError as error:
        problems.append(str(error))
    _check_data(bundle.config, root, demo, organizer, problems)
    limits = _plan_phases(bundle, root, organizer, demo=demo, default_queue_limit=default_queue_limit,
                          overrides=dict(time_budgets or {}), cpu_rate=cpu_images_per_second, problems=problems)
    fields = page_fields(bundle.config, organizer, limits, bundle_version(root))
    pages = [bundle.config.get("terms")] + [page.get("file") for page in bundle.config.get("pages") or []
                                            if isinstance(page, dict)]
    for page in dict.fromkeys(path for path in pages if path and (root / path).is_file()):
        try:
            bundle.pages[page] = render_page((root / page).read_text(encoding="utf-8"), fields, page)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise PackError("the bundle is not ready for upload:\n  - " + "\n  - ".join(problems))
    return bundle


def bundle_yaml(config: dict) -> bytes:
    """The bundle's competition.yaml text (dates stay quoted strings: PyYAML quotes what would read as a date)."""
    header = "# Written by tools/pack.py from competition.yaml and organizer.yaml; edit those, not this copy.\n"
    return (header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=110)).encode("utf-8")


def pack_bundle(root=REPO, out=None, *, demo=False, log=None, **options) -> Path:
    """dist/bundle.zip: competition.yaml at the root and every path it references, folders as folders.

    options: default_queue_limit, time_budgets ({phase name: seconds}), cpu_images_per_second (check_bundle).
    """
    root = Path(root)
    out = Path(out or root / "dist" / "bundle.zip")
    out.unlink(missing_ok=True)  # a refusal must not leave an earlier bundle to be uploaded by mistake
    bundle = check_bundle(root, demo=demo, **options)
    for note in bundle.notes:
        (log or (lambda message: print(f"pack: note: {message}", file=sys.stderr)))(note)

    def entries():
        yield "competition.yaml", bundle_yaml(bundle.config)
        for relative in referenced_paths(bundle.config):
            path = root / relative
            if path.is_dir():
                yield from ((name, data) for name, data in folder_entries(path, prefix=f"{relative}/")
                            if name != f"{relative}/{BUDGET_FILE}")
                if relative in bundle.budgets:
                    yield f"{relative}/{BUDGET_FILE}", json.dumps({"seconds": bundle.budgets[relative]}).encode()
            elif relative in bundle.pages:
                yield relative, bundle.pages[relative].encode("utf-8")
            else:
                yield relative, path.read_bytes()

    return write_zip(out, entries())


def write_budgets(root=REPO, *, demo=False, **options) -> dict:
    """Write each phase's time_budget.json into its input_data folder, as the packed bundle will carry it, so a local
    dry run stops where the platform would (make bundle-data does this for the demo data); returns folder -> seconds.

    options: as check_bundle's. Refuses what pack_bundle would refuse.
    """
    bundle = check_bundle(Path(root), demo=demo, **options)
    for folder, seconds in bundle.budgets.items():
        (Path(root) / folder / BUDGET_FILE).write_text(json.dumps({"seconds": seconds}) + "\n", encoding="utf-8")
    return bundle.budgets


# Starting-kit folders: the trained file that makes each one a runnable submission, and the command that makes it.
STARTING_KITS = {"starting_kit": ("classifier.joblib", "make starting-kit"),
                 "starting_kit_timm": ("weights.safetensors", "make starting-kit-timm")}


def pack_submissions(root=REPO, dist=None, log=print) -> list:
    """dist/<kit>_submission.zip for each trained starting kit and dist/<baseline>_submission.zip for each baseline."""
    root = Path(root)
    dist = Path(dist or root / "dist")
    written = []
    for name, (weights, target) in STARTING_KITS.items():
        kit = root / name
        if (kit / weights).is_file():
            written.append(write_zip(dist / f"{name}_submission.zip", folder_entries(kit)))
            log(f"wrote {written[-1]}")
        else:
            log(f"skipped {name}: not trained yet ({target})")
    for folder in sorted(p.parent for p in (root / "baselines").glob("*/metadata")):
        if not (folder / "card.json").is_file():
            log(f"skipped baselines/{folder.name}: not trained yet (make {folder.name})")
            continue
        written.append(pack_submission(folder, dist / f"{folder.name}_submission.zip"))
        log(f"wrote {written[-1]}")
    return written


def _phase_seconds(text: str) -> tuple:
    name, separator, seconds = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"expected PHASE=SECONDS, got {text!r}")
    return name, float(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO), help="the bundle folder (default: this repository)")
    parser.add_argument("--out", help="bundle zip path (default: ROOT/dist/bundle.zip)")
    parser.add_argument("--demo", action="store_true",
                        help="allow the synthetic demo data and organizer.yaml placeholders")
    parser.add_argument("--no-submissions", action="store_true", help="only write the bundle zip")
    parser.add_argument("--budgets-only", action="store_true",
                        help="only write each phase's time_budget.json into its input_data folder (the local dry "
                             "run then stops where the platform would), no zip")
    parser.add_argument("--default-queue-limit", type=int, default=DEFAULT_QUEUE_LIMIT,
                        help="the instance's cap on a step without a queue (600 s; codabench.org: 1200 s)")
    parser.add_argument("--time-budget", type=_phase_seconds, action="append", default=[], metavar="PHASE=SECONDS",
                        help="a phase's ingestion time budget (default: its limit less max(60 s, 10%%))")
    parser.add_argument("--cpu-images-per-second", type=float, default=CPU_IMAGES_PER_SECOND,
                        help=f"planning throughput of the default CPU queue (default {CPU_IMAGES_PER_SECOND})")
    args = parser.parse_args(argv)
    options = dict(demo=args.demo, default_queue_limit=args.default_queue_limit,
                   time_budgets=dict(args.time_budget), cpu_images_per_second=args.cpu_images_per_second)
    try:
        if args.budgets_only:
            for folder, seconds in write_budgets(args.root, **options).items():
                print(f"wrote {Path(args.root) / folder / BUDGET_FILE}: {seconds} s")
            return 0
        bundle = pack_bundle(args.root, args.out, **options)
    except PackError as error:
        print(f"pack: refused: {error}", file=sys.stderr)
        return 2
    print(f"wrote {bundle} ({bundle.stat().st_size / 1e6:.1f} MB): "
          + ("a demo bundle (placeholders and synthetic data): for trying CodaBench's upload, not a real edition"
             if args.demo else "upload it on CodaBench (user menu > Competitions > Upload)"))
    if not args.no_submissions:
        pack_submissions(args.root, Path(args.out).parent if args.out else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
