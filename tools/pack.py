"""Check and zip the bundle for CodaBench upload (dist/bundle.zip) and the ready-to-upload submission zips."""
import argparse
import importlib
import json
import sys
from pathlib import Path

from competition_rules import check_competition, check_score_keys, load_competition, referenced_paths
from fixed_zip import folder_entries, write_zip

REPO = Path(__file__).resolve().parents[1]


class PackError(Exception):
    """The bundle is not fit for upload; the message lists every reason."""


def score_keys(root) -> tuple:
    """The keys score.py writes, imported from the scoring program itself (never copied here)."""
    folder = str(Path(root) / "scoring_program")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return tuple(importlib.import_module("leaderboard_scores").LEADERBOARD_KEYS)


def _check_data(config, root, demo, problems):
    """Bundle data built by prepare.py, complete for every task, and not the demo data unless --demo."""
    manifest_path = root / "reference_data" / "manifest.json"
    if not manifest_path.is_file():
        problems.append(f"{manifest_path}: not found; build the data first (python tools/prepare.py RELEASE --out .)")
    elif json.loads(manifest_path.read_text(encoding="utf-8")).get("demo", True) and not demo:
        problems.append(f"{manifest_path}: the data is the synthetic demo data (demo: true); build it from the "
                        "release with tools/prepare.py, or pass --demo to pack it anyway")
    for task in config.get("tasks") or []:
        for kind, names in (("input_data", ("pristine.zip", "degraded.zip")), ("reference_data", ("reference.csv",))):
            folder = root / str(task.get(kind, ""))
            if task.get(kind) and folder.is_dir():
                problems += [f"task {task.get('name')}: {task[kind]}/{name} missing" for name in names
                             if not (folder / name).is_file()]


def check_bundle(root=REPO, *, demo=False) -> dict:
    """Parse competition.yaml and raise PackError listing every problem (v2 rules, score keys, data)."""
    root = Path(root)
    config_path = root / "competition.yaml"
    if not config_path.is_file():
        raise PackError(f"{config_path}: not found")
    config = load_competition(config_path)
    problems = check_competition(config, root)
    problems += check_score_keys(config, score_keys(root))
    _check_data(config, root, demo, problems)
    if problems:
        raise PackError("the bundle is not ready for upload:\n  - " + "\n  - ".join(problems))
    return config


def pack_bundle(root=REPO, out=None, *, demo=False) -> Path:
    """dist/bundle.zip: competition.yaml at the root and every path it references, folders as folders."""
    root = Path(root)
    config = check_bundle(root, demo=demo)

    def entries():
        yield "competition.yaml", (root / "competition.yaml").read_bytes()
        for relative in referenced_paths(config):
            path = root / relative
            if path.is_dir():
                yield from folder_entries(path, prefix=f"{relative}/")
            else:
                yield relative, path.read_bytes()

    return write_zip(Path(out or root / "dist" / "bundle.zip"), entries())


def pack_submissions(root=REPO, dist=None, log=print) -> list:
    """dist/starting_kit_submission.zip and dist/<baseline>_submission.zip for every trained baseline."""
    root = Path(root)
    dist = Path(dist or root / "dist")
    written = []
    kit = root / "starting_kit"
    if (kit / "classifier.joblib").is_file():
        written.append(write_zip(dist / "starting_kit_submission.zip", folder_entries(kit)))
        log(f"wrote {written[-1]}")
    else:
        log("skipped starting_kit: not trained yet (make starting-kit)")
    sys.path.insert(0, str(root / "baselines"))
    from pack_baseline import pack_submission

    for folder in sorted(p.parent for p in (root / "baselines").glob("*/metadata")):
        if not (folder / "card.json").is_file():
            log(f"skipped baselines/{folder.name}: not trained yet (make {folder.name})")
            continue
        written.append(pack_submission(folder, dist / f"{folder.name}_submission.zip"))
        log(f"wrote {written[-1]}")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(REPO), help="the bundle folder (default: this repository)")
    parser.add_argument("--out", help="bundle zip path (default: ROOT/dist/bundle.zip)")
    parser.add_argument("--demo", action="store_true", help="allow packing the synthetic demo data")
    parser.add_argument("--no-submissions", action="store_true", help="only write the bundle zip")
    args = parser.parse_args(argv)
    try:
        bundle = pack_bundle(args.root, args.out, demo=args.demo)
    except PackError as error:
        print(f"pack: refused: {error}", file=sys.stderr)
        return 2
    print(f"wrote {bundle} ({bundle.stat().st_size / 1e6:.1f} MB): upload it on CodaBench (Benchmarks > Upload)")
    if not args.no_submissions:
        pack_submissions(args.root, Path(args.out).parent if args.out else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
