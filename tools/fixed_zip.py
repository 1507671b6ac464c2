"""Reproducible zips for the bundle, its data and the submissions: the same content always gives the same bytes."""
import os
import zipfile
from pathlib import Path

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest zip date: no build time in the archive
# Already compressed: stored as they are, so JPEG bytes in the data zips stay identical to the release's.
STORED_SUFFIXES = {".zip", ".jpg", ".jpeg", ".png", ".gz", ".joblib", ".pt", ".pth", ".safetensors"}
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store", "runs"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


def write_zip(out, entries) -> Path:
    """Write (name in zip, bytes) entries in the given order with fixed dates and permissions, no comment, atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            stored = Path(name).suffix.lower() in STORED_SUFFIXES
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(temporary, out)
    return out


def folder_entries(folder: Path, prefix: str = ""):
    """(name, bytes) of the files under folder in a fixed order, read one at a time, without caches and build leftovers."""
    for path in sorted(Path(folder).rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not (set(relative.parts) & SKIPPED_NAMES) and path.suffix not in SKIPPED_SUFFIXES:
            yield prefix + relative.as_posix(), path.read_bytes()
