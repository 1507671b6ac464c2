"""Lists the test images inside an input zip and decodes them to RGB, ahead of the model, in a thread pool."""
import io
import os
import threading
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor
from itertools import islice
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from regular_files import NotRegularFile, open_regular, reader

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class InputDataError(Exception):
    """The organizer's input data is unusable (missing, not a file, not a zip, empty, duplicate image ids)."""


@dataclass(frozen=True)
class ImageEntry:
    set_name: str
    image_id: str
    member: str  # the entry's name inside the zip


class InputZip:
    """One input zip, opened once as a regular file (regular_files.py) before the model's process starts: whatever
    later happens to its name (a FIFO, a link or a folder put in its place), the supervisor reads the file it opened."""

    def __init__(self, zip_path: Path):
        self.path = Path(zip_path)
        try:
            self.fd = open_regular(self.path)
        except FileNotFoundError:
            raise InputDataError(f"input zip not found: {self.path}") from None
        except OSError as error:
            detail = str(error) if isinstance(error, NotRegularFile) else f"{self.path}: {error.strerror}"
            raise InputDataError(f"input zip unusable: {detail}; the input data must hold the zips themselves"
                                 ) from None

    def archive(self) -> zipfile.ZipFile:
        """A ZipFile of its own over the opened file (one per thread: each reads at its own position)."""
        return zipfile.ZipFile(reader(self.fd))

    def close(self) -> None:
        os.close(self.fd)


def list_images(source: InputZip, set_name: str) -> list[ImageEntry]:
    """Entries sorted by image id (the file stem); skips folders, `__MACOSX/` and dotfiles.

    Every other entry is treated as an image, so a file that is not one becomes a recorded per-image
    error instead of disappearing. Subfolders are allowed; two entries with the same stem are an error.
    """
    zip_path = source.path
    try:
        with source.archive() as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InputDataError(f"{zip_path} is not a valid zip file ({exc})") from None
    members_by_id = {}
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if name.endswith(("/", "\\")) or path.parts[0] == "__MACOSX" or any(p.startswith(".") for p in path.parts):
            continue
        members_by_id.setdefault(path.stem, []).append(name)
    if not members_by_id:
        raise InputDataError(f"{zip_path} contains no images")
    duplicates = {image_id: members for image_id, members in members_by_id.items() if len(members) > 1}
    if duplicates:
        shown = "; ".join(f"{image_id}: {', '.join(sorted(members))}" for image_id, members in sorted(duplicates.items())[:10])
        raise InputDataError(f"{zip_path} has {len(duplicates)} duplicate image ids (ids are file names without "
                             f"extension and folder): {shown}")
    return [ImageEntry(set_name, image_id, members[0]) for image_id, members in sorted(members_by_id.items())]


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB version of any PIL image; 16-bit and 32-bit grey levels are scaled to 8 bits, alpha is dropped."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        grey = np.asarray(image, dtype=np.float64)
        if image.mode in SIXTEEN_BIT_MODES or grey.max(initial=0) > 255:
            grey = grey / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def decode(data: bytes) -> Image.Image:
    """Decode image bytes fully (a truncated JPEG raises here, not later inside the model)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return to_rgb(image)


class ZipReader:
    """One zip handle per thread, so pool threads read members at the same time without sharing a file position."""

    def __init__(self, source: InputZip) -> None:
        self.source = source
        self._local = threading.local()
        self._handles = []
        self._lock = threading.Lock()

    def read(self, member: str) -> bytes:
        archive = getattr(self._local, "archive", None)
        if archive is None:
            archive = self._local.archive = self.source.archive()
            with self._lock:
                self._handles.append(archive)
        return archive.read(member)

    def close(self) -> None:
        with self._lock:
            for archive in self._handles:
                archive.close()
            self._handles.clear()


def decode_chunk(reader: ZipReader, entries: list[ImageEntry]) -> list[tuple]:
    """[(entry, RGB pixels as a height x width x 3 uint8 array, None) or (entry, None, error message)] for
    consecutive entries."""
    decoded = []
    for entry in entries:
        try:
            decoded.append((entry, np.asarray(decode(reader.read(entry.member))), None))
        except UnidentifiedImageError:  # its message holds a memory address, useless to a participant
            decoded.append((entry, None, f"unreadable image {entry.member}: not an image format Pillow can read"))
        except Exception as exc:  # any decoder failure is this image's error, never the run's
            decoded.append((entry, None, f"unreadable image {entry.member}: {type(exc).__name__}: {exc}"))
    return decoded


def decoded_batches(reader: ZipReader, entries: list[ImageEntry], batch_size: int, pool: Executor, depth: int,
                    parts: int = 1) -> Iterator[list[tuple]]:
    """Yield decoded batches in order while the pool keeps up to `depth` further batches decoding.

    Each batch is decoded as `parts` chunks at once (one per pool thread), so the model waits less for a set's
    first batch, the only one that cannot overlap with its work.
    """
    chunk_size = -(-batch_size // max(1, parts))
    batches = iter([entries[i:i + batch_size] for i in range(0, len(entries), batch_size)])

    def submit(batch):
        return [pool.submit(decode_chunk, reader, batch[i:i + chunk_size]) for i in range(0, len(batch), chunk_size)]

    pending = deque(submit(batch) for batch in islice(batches, depth))
    while pending:
        decoded = [item for chunk in pending.popleft() for item in chunk.result()]
        following = next(batches, None)
        if following is not None:
            pending.append(submit(following))
        yield decoded
