"""Facts for the run report that come from the machine: versions, peak memory."""
import os
import platform
import sys
from dataclasses import dataclass

import numpy
import PIL

try:
    import resource
except ImportError:  # Windows: psutil (imported only there) gives the peak working set instead
    resource = None


@dataclass(frozen=True)
class Environment:
    """The machine's side of the run report: versions, platform, cores."""
    python_version: str
    numpy_version: str
    pillow_version: str
    platform: str
    cpu_count: int | None


def environment() -> Environment:
    """Versions and platform (torch's comes from the model's process: the supervisor never imports torch)."""
    return Environment(platform.python_version(), numpy.__version__, PIL.__version__, platform.platform(),
                       os.cpu_count())


def peak_memory_mb() -> tuple[float, float]:
    """(this process, its finished children: the model's process) peak resident memory in MB."""
    if resource is None:
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20, 0.0
    scale = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is bytes on macOS, KiB on Linux
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale)
