"""Sends everything the submission prints (Python and C level, child processes too) to a size-capped log file."""
import os
import sys
import threading

NOTE = "\n[ingestion] log truncated: the submission printed {total} bytes, only the first {kept} are kept\n"


def open_console():
    """A text stream on a copy of the current stderr: ingestion's own messages, unaffected by the capture."""
    return os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")


class OutputCapture:
    """Points file descriptors 1 and 2 (and sys.stdout/sys.stderr) at a pipe drained into `log_path`.

    A reader thread keeps draining after the cap so a model that prints gigabytes never blocks,
    and the log on disk is flushed after every chunk so it survives a watchdog exit.
    """

    def __init__(self, log_path, cap_bytes):
        self.log_path = log_path
        self.cap_bytes = cap_bytes
        self.total_bytes = 0
        self.kept_bytes = 0
        self._lock = threading.Lock()
        self._saved_fds = None
        self._saved_streams = None
        self._reader = None
        self._log = None

    @property
    def truncated(self):
        return self.total_bytes > self.kept_bytes

    def start(self):
        _flush_python_streams()
        self._log = open(self.log_path, "wb")
        self._saved_fds = (os.dup(1), os.dup(2))
        read_end, write_end = os.pipe()
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._saved_streams = (sys.stdout, sys.stderr)
        sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False, buffering=1)
        self._reader = threading.Thread(target=self._drain, args=(read_end,), name="submission-output", daemon=True)
        self._reader.start()

    def _drain(self, read_end):
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                with self._lock:
                    room = self.cap_bytes - self.kept_bytes
                    if room > 0 and not self._log.closed:
                        self._log.write(chunk[:room])
                        self._log.flush()
                        self.kept_bytes += min(room, len(chunk))
                    self.total_bytes += len(chunk)

    def stop(self, wait_seconds=5.0):
        """Restore the streams, wait for the reader to drain (a child process may hold the pipe), close the log."""
        if self._saved_fds is None:
            return
        _flush_python_streams()
        sys.stdout, sys.stderr = self._saved_streams
        for fd, saved in zip((1, 2), self._saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        self._saved_fds = None
        self._reader.join(wait_seconds)
        with self._lock:
            if self.truncated:
                self._log.write(NOTE.format(total=self.total_bytes, kept=self.kept_bytes).encode())
            self._log.close()


def _flush_python_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # the submission may have closed or replaced them
            pass
