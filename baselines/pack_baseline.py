"""Put the shared model.py into a baseline folder and zip the folder as a CodaBench submission.

    python baselines/pack_baseline.py resnet50 ensemble --out dist   # -> dist/<name>_submission.zip
"""
import argparse
import shutil
from pathlib import Path

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from fixed_zip import write_zip  # tools/: the project's one zip writer

BASELINES_DIR = Path(__file__).resolve().parent
MODEL_SOURCE = BASELINES_DIR / "baseline_model.py"
STATIC_FILES = ("requirements.txt", "metadata")  # committed in each baseline folder


def install_submission_files(folder: Path, baseline: str) -> None:
    """Copy baselines/baseline_model.py to <folder>/model.py (one source for every baseline, no drift), and the
    baseline's committed requirements.txt and metadata when the folder is not baselines/<baseline> itself."""
    folder = Path(folder)
    sources = {"model.py": MODEL_SOURCE, **{name: BASELINES_DIR / baseline / name for name in STATIC_FILES}}
    for name, source in sources.items():
        target = folder / name
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


def submission_files(folder: Path) -> list[str]:
    """The files that make the submission (relative names), checked present; the card lists the weights."""
    from baseline_model import CARD_NAME, read_card  # imported when needed: timm and torch

    folder = Path(folder)
    card = read_card(folder)  # explains how to build a missing card
    install_submission_files(folder, card.get("baseline", folder.name))
    names = ["model.py", *STATIC_FILES, CARD_NAME, *(member["weights"] for member in card["members"])]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {missing}; rebuild with `{card.get('make_command', 'make')}`")
    return names


def pack_submission(folder: Path, zip_path: Path) -> Path:
    """Zip the baseline folder with model.py, its card and weights at the zip root; returns the zip path."""
    folder = Path(folder)
    return write_zip(zip_path, [(name, (folder / name).read_bytes()) for name in submission_files(folder)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baselines", nargs="+", help="baseline folder names under baselines/ (resnet50, ensemble), "
                        "or paths of trained folders (train_baseline.py --out)")
    parser.add_argument("--out", type=Path, default=BASELINES_DIR.parent / "dist", help="folder for the zips")
    args = parser.parse_args(argv)
    for name in args.baselines:
        folder = Path(name) if "/" in name else BASELINES_DIR / name
        path = pack_submission(folder, args.out / f"{folder.name}_submission.zip")
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
