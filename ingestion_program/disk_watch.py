"""Watches the free space of the filesystems a submission can write to while it runs.

On the platform the model writes to the worker machine's own disk (the container's writable layer, /tmp, its own
folder) with no quota, so a model that writes or preallocates without end fills the disk of every job on that
machine. Free space is the measure (fstatvfs: one call per filesystem, no walk of what was written): preallocated
files count, sparse ones, which take no space, do not. Each filesystem is held by a descriptor opened at the start,
so a path the model replaces by a link cannot redirect the measure.
"""
import os
from pathlib import Path


class DiskWatch:
    """The free space of the filesystems holding `paths`, at the start and now; the model may take at most
    min(max_mb, half of what was free) of each."""

    def __init__(self, paths: list[Path | str], max_mb: int):
        self.max_bytes = max_mb * 2**20
        self.watched: dict[int, tuple[str, int, int]] = {}  # device -> (path, descriptor, free bytes at the start)
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # before the model runs: links are
                # followed (/tmp may be one), and its descriptor is what is measured from then on
            except OSError:  # not there on this machine
                continue
            device = os.fstat(fd).st_dev
            if device in self.watched:
                os.close(fd)
                continue
            self.watched[device] = (str(path), fd, _free_bytes(fd))

    def overuse(self) -> str | None:
        """What a filesystem lost beyond its allowance since the start, in words; None while none has."""
        for path, fd, free_at_start in self.watched.values():
            used = free_at_start - _free_bytes(fd)
            allowed = min(self.max_bytes, free_at_start // 2)
            if used > allowed:
                return (f"the free space of the filesystem holding {path} fell by {used / 2**20:,.0f} MB while the "
                        f"submission ran, more than the {allowed / 2**20:,.0f} MB allowed (WBC_MAX_DISK_MB, and at "
                        f"most half of what was free)")
        return None

    def close(self) -> None:
        for _, fd, _ in self.watched.values():
            os.close(fd)
        self.watched = {}


def _free_bytes(fd: int) -> int:
    """Bytes an unprivileged writer could still use on the descriptor's filesystem."""
    stats = os.fstatvfs(fd)
    return stats.f_bavail * stats.f_frsize
