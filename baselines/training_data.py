"""The training recipe's view of a WBCBench release: training rows, and validation sets with degraded versions."""
import io
from pathlib import Path

import pandas as pd
from PIL import Image

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
# tools/: shards and rows, validated; the one way degraded versions are synthesized.
import degrade
from release_reader import LocalRelease, read_rows


def load_split(release_dir: Path, config: str, split: str) -> pd.DataFrame:
    """One config/split as a DataFrame (image bytes in column 'image_bytes'); empty when the release lacks it.

    Reading and validation (shard set complete, columns, labels in the class legend, severities) are
    tools/release_reader.py's; errors name the file and row.
    """
    release = LocalRelease(release_dir)
    if split not in release.splits(config):
        return pd.DataFrame(columns=["image_id", "label", "severity", "original_image_id", "patient_hash",
                                     "image_bytes"])
    rows = read_rows(release, config, split, release.legend())
    columns = ("image_id", "label", "severity", "original_image_id", "patient_hash")
    frame = pd.DataFrame({name: [getattr(row, name) for row in rows] for name in columns})
    frame["image_bytes"] = [row.image for row in rows]
    return frame


def decode(image_bytes: bytes) -> Image.Image:
    """JPEG/PNG bytes -> RGB PIL image."""
    return Image.open(io.BytesIO(image_bytes)).convert("RGB")


def training_rows(release_dir: Path, split: str = "phase2_train") -> pd.DataFrame:
    """The training split: pristine rows plus the release's degraded rows when it has them."""
    pristine = load_split(release_dir, "pristine", split)
    if pristine.empty:
        raise FileNotFoundError(f"{release_dir}: no pristine/{split}-*.parquet shards; is this a WBCBench release?")
    degraded = load_split(release_dir, "degraded", split)
    return pd.concat([pristine, degraded], ignore_index=True)


def validation_sets(release_dir: Path, split: str = "phase2_eval", seed: int = 0,
                    limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(pristine rows, degraded rows, where the degraded rows came from) for the validation split.

    The degraded set is the release's own when it has one, else synthesized with tools/prepare.py's rule
    (tools/degrade.py's synthesized_versions: severity drawn uniformly from the four, fixed seed), one version of
    every pristine image, so every run and every baseline is validated on the same images. This is the trainer's
    own model selection, never a score: the bundle's sets score each cell once. `limit` caps the images per set.
    """
    pristine = load_split(release_dir, "pristine", split)
    if pristine.empty:
        raise FileNotFoundError(f"{release_dir}: no pristine/{split}-*.parquet shards; is this a WBCBench release?")
    degraded = load_split(release_dir, "degraded", split)
    pristine = limit_rows(pristine, limit, seed)
    if not degraded.empty:
        return pristine, limit_rows(degraded, limit, seed), "release"
    return pristine, synthesize_degraded(pristine, seed), f"synthesized with tools/degrade.py (seed {seed})"


def limit_rows(rows: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A seeded subset of at most `limit` rows, keeping every class present when possible."""
    if limit is None or len(rows) <= limit:
        return rows.reset_index(drop=True)
    shuffled = rows.sample(frac=1.0, random_state=seed)
    first = shuffled.drop_duplicates("label")
    rest = shuffled.drop(first.index)
    subset = first.head(limit) if len(first) >= limit else pd.concat([first, rest.head(limit - len(first))])
    return subset.reset_index(drop=True)


def synthesize_degraded(pristine: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One degraded version per pristine row, made and named as tools/prepare.py makes and names them."""
    rows = []
    versions = degrade.synthesized_versions(pristine["image_bytes"], seed)
    for row, (severity, data, _) in zip(pristine.itertuples(index=False), versions):
        rows.append({**row._asdict(), "image_id": degrade.version_id(row.image_id), "severity": severity,
                     "original_image_id": row.image_id, "image_bytes": data})
    return pd.DataFrame(rows)
