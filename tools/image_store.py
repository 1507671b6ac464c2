"""Image bytes parked in one temporary file while prepare.py works, so its memory does not grow with the release."""
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredImage:
    """Where one image's bytes sit in the store."""

    offset: int
    length: int


class ImageStore:
    """Append-only file of image bytes: put() while reading the release shard by shard, get() while writing zips."""

    def __init__(self, folder):
        self.path = Path(folder) / "images.bin"
        self._file = open(self.path, "w+b", buffering=0)  # unbuffered: every put() is readable at once
        self._end = 0

    def put(self, data: bytes) -> StoredImage:
        self._file.write(data)
        stored = StoredImage(self._end, len(data))
        self._end += len(data)
        return stored

    def get(self, stored: StoredImage) -> bytes:
        data = os.pread(self._file.fileno(), stored.length, stored.offset)
        if len(data) != stored.length:
            raise OSError(f"{self.path}: short read at byte {stored.offset}")
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
