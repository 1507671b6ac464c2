"""Test helper: a bundle folder made of the repository's files and prepared data from elsewhere."""
import json
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BUNDLE_FILES = ("competition.yaml", "organizer.yaml", "logo.png")
# organizer.yaml as an organizer fills it (tools/pack.py refuses placeholders without --demo).
FILLED_ORGANIZER = {
    "organizers": "A. Organizer (chair), Example Institute", "contact_email": "wbc@example.org",
    "endorsement": "Run independently of the WBCBench 2026 organizers.",
    "conflict_of_interest": "Organizers' groups are ranked separately.", "ethics_approval": "Example approval 42.",
    "prizes": "No prizes.", "final_test_set": "the release's phase2_test split, whose labels are public",
    "development_start": "2027-02-01 00:00:00", "final_start": "2027-04-01 12:00:00",
    "final_end": "2027-04-15 23:59:59", "results_announced": "2027-05-01 at Example Conference",
    "lifecycle": "One-off.", "publication_policy": "Publish after the announcement.",
    "annotation": "As the release's paper states.", "software_repository": "https://example.org/bundle",
    "queue": "6f1b3c52-9a43-4d57-8a2b-0c1d2e3f4a5b", "worker": "1 x GPU, 8 cores", "worker_images_per_second": 50,
}
BUNDLE_FOLDERS = ("ingestion_program", "scoring_program", "pages")


def copy_bundle(data_root, destination, starting_kit=None) -> Path:
    """destination gets the repo's yaml, logo, programs and pages, data_root's input_data/ and reference_data/."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        if (REPO / name).exists():
            shutil.copy(REPO / name, destination / name)
    for name in BUNDLE_FOLDERS:
        if (REPO / name).exists():
            shutil.copytree(REPO / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("input_data", "reference_data"):
        shutil.copytree(Path(data_root) / name, destination / name)
    if starting_kit is not None:
        shutil.copytree(starting_kit, destination / "starting_kit", ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def make_release_ready(root, seed=7, **organizer) -> Path:
    """root as after a real prepare (manifest demo false, a private seed) with a filled organizer.yaml."""
    root = Path(root)
    (root / "organizer.yaml").write_text(yaml.safe_dump({**FILLED_ORGANIZER, **organizer}, sort_keys=False))
    manifest_path = root / "reference_data" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(demo=False, seed=seed)
    manifest_path.write_text(json.dumps(manifest))
    return root
