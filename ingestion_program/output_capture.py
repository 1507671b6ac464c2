"""Drains everything the model's process prints (stdout and stderr, its children's too) into a size-capped log."""
import os
import shutil
import tempfile
import threading
from typing import BinaryIO

NOTE = "\n[ingestion] log truncated: the submission printed {total} bytes, only the first {kept} are kept\n"


class CappedLog:
    """A pipe whose write end is the model process's stdout and stderr; a thread copies it into a file with no name
    (an unlinked temporary file) up to `cap_bytes` and keeps reading (and counting) after the cap, so a model printing
    gigabytes never blocks. Nothing of it sits at a path the model could find, replace or write to: the log reaches
    the output folder only when the supervisor copies it there (copy_to) after the model's processes are gone."""

    def __init__(self, cap_bytes: int):
        self.cap_bytes = cap_bytes
        self.total_bytes = 0
        self.kept_bytes = 0
        self.write_error: str | None = None  # why the log stopped being kept before the cap (a full disk)
        self._read_fd, self.write_fd = os.pipe()
        # O_TMPFILE on Linux: it never has a name. Unbuffered: a write that fails (a full disk) fails in _drain, where
        # it is caught, never later in a flush.
        self._log = tempfile.TemporaryFile(buffering=0)
        self._reader = threading.Thread(target=self._drain, name="submission-output", daemon=True)
        self._reader.start()

    @property
    def truncated(self) -> bool:
        return self.total_bytes > self.kept_bytes

    def _drain(self) -> None:
        with os.fdopen(self._read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                room = self.cap_bytes - self.kept_bytes
                if room > 0 and self.write_error is None:
                    self._keep(chunk[:room])
                self.total_bytes += len(chunk)

    def _keep(self, data: bytes) -> None:
        """Write data to the log file, all of it (an unbuffered write may take only part); on failure, a full disk
        say, note why and keep nothing more (the drain goes on, counting, so the model never blocks)."""
        view = memoryview(data)
        try:
            while view:
                written = self._log.write(view)
                if not written:
                    raise OSError(f"the log file took no more bytes after {self.kept_bytes}")
                self.kept_bytes += written
                view = view[written:]
        except OSError as error:
            self.write_error = error.strerror or str(error)

    def close_writer(self) -> None:
        """Close the supervisor's copy of the write end (once the model process holds its own)."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def stop(self, wait_seconds: float = 5.0) -> None:
        """Wait for the reader to see the end of the pipe (every writer gone); note a truncation at the end."""
        self.close_writer()
        self._reader.join(wait_seconds)
        if self.truncated and self.write_error is None:
            try:
                self._log.write(NOTE.format(total=self.total_bytes, kept=self.kept_bytes).encode())
            except OSError as error:
                self.write_error = error.strerror or str(error)

    def copy_to(self, target: BinaryIO) -> None:
        """Write the log into target (a file the supervisor opened), from its start each time: an output folder that
        was moved gets it too."""
        self._log.seek(0)
        shutil.copyfileobj(self._log, target)
