"""Train the starting kit's classifier on a WBCBench-format release and save it beside model.py."""
import argparse
import importlib.util
import io
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
SPLIT = "phase2_train"
# Degraded training images teach the classifier what blur, noise and colour shift do to the features.
CONFIGS = ("pristine", "degraded")


def _load_model_module():
    """model.py of this folder, loaded by path so it never clashes with another `model` module."""
    spec = importlib.util.spec_from_file_location("starting_kit_model", HERE / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model = _load_model_module()


def read_split(release_dir, split=SPLIT):
    """(images as JPEG bytes, labels) of one split over every config present in the release."""
    release_dir = Path(release_dir)
    shards = [shard for config in CONFIGS for shard in sorted((release_dir / config).glob(f"{split}-*.parquet"))]
    if not shards:
        raise FileNotFoundError(f"no {split}-*.parquet shard under {release_dir}/{{{','.join(CONFIGS)}}}/")
    images, labels = [], []
    for shard in shards:
        table = pq.read_table(shard, columns=["image", "label"])
        images += [row["bytes"] for row in table.column("image").to_pylist()]
        labels += table.column("label").to_pylist()
    unknown = sorted(set(labels) - set(model.CLASSES))
    if unknown:
        raise ValueError(f"{release_dir}: labels {unknown} are not WBCBench classes {model.CLASSES}")
    return images, np.array(labels)


def make_classifier(seed=0):
    """Gradient-boosted trees; class weights balance SNE (most frequent) against the rare classes."""
    return HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, max_leaf_nodes=15, l2_regularization=1.0,
        class_weight="balanced", early_stopping=False, random_state=seed)


def train(release_dir, out_path=HERE / model.WEIGHTS_FILE, seed=0):
    """Fit the classifier on the release's phase2_train split and save it to out_path; returns out_path."""
    started = time.perf_counter()
    images, labels = read_split(release_dir)
    x = np.stack([model.features(Image.open(io.BytesIO(data)).convert("RGB")) for data in images])
    with threadpool_limits(1):  # OpenMP threads stall on a busy machine; one thread is fast enough here
        classifier = make_classifier(seed).fit(x, labels)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(classifier, out_path)
    print(f"trained on {len(labels)} images ({len(set(labels))} classes) in {time.perf_counter() - started:.1f} s"
          f" -> {out_path}")
    return out_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("release", help="release folder: <release>/{pristine,degraded}/phase2_train-*.parquet")
    parser.add_argument("--out", default=HERE / model.WEIGHTS_FILE, type=Path, help="where to save the classifier")
    parser.add_argument("--seed", default=0, type=int)
    args = parser.parse_args(argv)
    train(args.release, args.out, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
