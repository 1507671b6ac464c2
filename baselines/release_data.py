"""The training recipe's view of a WBCBench release: training rows, and validation sets with a degraded twin."""
import io

import numpy as np
import pandas as pd
from PIL import Image

# tools/release_reader.py (the recipe puts tools/ on sys.path): shards and rows, validated.
from release_reader import LocalRelease, read_rows


def load_split(release_dir, config, split):
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


def decode(image_bytes):
    """JPEG/PNG bytes -> RGB PIL image."""
    return Image.open(io.BytesIO(image_bytes)).convert("RGB")


def training_rows(release_dir, split="phase2_train"):
    """The training split: pristine rows plus the release's degraded rows when it has them."""
    pristine = load_split(release_dir, "pristine", split)
    if pristine.empty:
        raise FileNotFoundError(f"{release_dir}: no pristine/{split}-*.parquet shards; is this a WBCBench release?")
    degraded = load_split(release_dir, "degraded", split)
    return pd.concat([pristine, degraded], ignore_index=True)


def validation_sets(release_dir, split="phase2_eval", seed=0, limit=None):
    """(pristine rows, degraded rows, where the degraded rows came from) for the validation split.

    The degraded set is the release's own when it has one, else synthesised the way tools/prepare.py does it:
    each pristine image gets one degraded twin whose severity is drawn uniformly from the four severities
    (tools/degrade.py's degraded_twin, the rule prepare.py uses) with a fixed seed,
    so every run and every baseline is validated on the same images. `limit` caps the images per set.
    """
    pristine = load_split(release_dir, "pristine", split)
    if pristine.empty:
        raise FileNotFoundError(f"{release_dir}: no pristine/{split}-*.parquet shards; is this a WBCBench release?")
    degraded = load_split(release_dir, "degraded", split)
    pristine = limit_rows(pristine, limit, seed)
    if not degraded.empty:
        return pristine, limit_rows(degraded, limit, seed), "release"
    return pristine, synthesise_degraded(pristine, seed), f"synthesised with tools/degrade.py (seed {seed})"


def limit_rows(rows, limit, seed):
    """A seeded subset of at most `limit` rows, keeping every class present when possible."""
    if limit is None or len(rows) <= limit:
        return rows.reset_index(drop=True)
    shuffled = rows.sample(frac=1.0, random_state=seed)
    first = shuffled.drop_duplicates("label")
    rest = shuffled.drop(first.index)
    subset = first.head(limit) if len(first) >= limit else pd.concat([first, rest.head(limit - len(first))])
    return subset.reset_index(drop=True)


def synthesise_degraded(pristine, seed):
    """One degraded twin per pristine row, made with the project's degradations (tools/degrade.py)."""
    import degrade  # tools/ is on sys.path for the recipe (see train_baseline.py) and the tests

    rng = np.random.default_rng(seed)
    rows = []
    for row in pristine.itertuples(index=False):
        severity, data, _ = degrade.degraded_twin(row.image_bytes, rng)
        rows.append({**row._asdict(), "image_id": f"{row.image_id}-{severity}", "severity": severity,
                     "original_image_id": row.image_id, "image_bytes": data})
    return pd.DataFrame(rows)
