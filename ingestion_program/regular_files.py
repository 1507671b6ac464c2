"""Opens the files the supervisor reads (input zips, a submission's zip and requirements.txt) as regular files only.

O_NOFOLLOW and O_NONBLOCK, then fstat: a link, a FIFO (whose open would block the supervisor for ever), a folder or a
device is refused before one byte is read, whatever the name says.
"""
import io
import os
import stat
from pathlib import Path

READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotRegularFile(OSError):
    """The path is a link, a FIFO, a folder or a device; the message says which."""


def open_regular(path: Path) -> int:
    """A read-only descriptor of the regular file at path; FileNotFoundError, NotRegularFile or another OSError."""
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError as error:
        if os.path.islink(path):
            raise NotRegularFile(f"{path} is a symbolic link, not a file") from None
        raise error
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(f"{path} is {file_kind(mode)}, not a file")
    return fd


def file_kind(mode: int) -> str:
    """What a stat mode is, as the messages name it ('a FIFO'): one wording for the supervisor's every refusal."""
    return ("a regular file" if stat.S_ISREG(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device")


class PositionalFile(io.RawIOBase):
    """A read-only file object over a shared descriptor with a position of its own (os.pread): any number of threads
    read one opened file at once without sharing an offset. Closing it leaves the descriptor open."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd, self._position = fd, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.pread(self._fd, len(buffer), self._position)
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: os.fstat(self._fd).st_size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


def reader(fd: int) -> io.BufferedReader:
    """A buffered file object of its own over fd (see PositionalFile)."""
    return io.BufferedReader(PositionalFile(fd))
