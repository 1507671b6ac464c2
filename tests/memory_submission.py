"""A hostile submission that remembers: it answers a near-copy of an image it has already answered with that answer.

Wrapped around any submission folder whose model.py returns probabilities: the wrapped model keeps a blurred,
normalised 12 x 12 grey thumbnail of every image it answers, and when a new image's thumbnail correlates above
MATCH with an earlier one (blur, noise and colour shifts keep the correlation of the same cell high), it repeats the
earlier answer. Where the degraded set held degraded copies of pristine-set cells, this turned the pristine
score into the degraded score; with each cell scored once it has nothing to find.
"""
import shutil
from pathlib import Path

MEMORY_MODEL = '''"""The submission's own model, plus a memory of every image it answered (a hostile test submission)."""
import sys

import numpy as np
from PIL import ImageFilter

from plain_model import Model as Plain

MATCH = 0.97


def thumbnail(image):
    small = image.convert("L").filter(ImageFilter.GaussianBlur(6)).resize((12, 12))
    values = np.asarray(small, dtype=np.float64).ravel()
    values -= values.mean()
    norm = np.linalg.norm(values)
    return values / norm if norm else values


class Model(Plain):
    def load(self):
        super().load()
        self.thumbnails, self.answers, self.remembered = [], [], 0

    def predict(self, image):
        return self.predict_batch([image])[0]

    def predict_batch(self, images):
        answers = list(Plain.predict_batch(self, images))
        for index, image in enumerate(images):
            signature = thumbnail(image)
            if self.thumbnails:
                similarity = np.stack(self.thumbnails) @ signature
                best = int(similarity.argmax())
                if similarity[best] > MATCH:
                    answers[index] = self.answers[best]
                    self.remembered += 1
            self.thumbnails.append(signature)
            self.answers.append(answers[index])
        print(f"memory: {self.remembered} answers remembered so far", file=sys.stderr, flush=True)
        return answers
'''


def make_memory_submission(plain: Path, dest: Path) -> Path:
    """A copy of the submission folder `plain` whose model.py wraps the original (kept as plain_model.py)."""
    shutil.copytree(plain, dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "model.py").rename(dest / "plain_model.py")
    (dest / "model.py").write_text(MEMORY_MODEL, encoding="utf-8")
    return dest


def remembered(log: Path) -> int:
    """How many answers the memory submission repeated, from what it printed (its last count)."""
    counts = [int(line.split()[1]) for line in log.read_text(encoding="utf-8").splitlines()
              if line.startswith("memory: ")]
    return counts[-1] if counts else 0
