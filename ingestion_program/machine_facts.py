"""Facts for the run report that come from the machine: versions, peak memory."""
import os
import platform
import sys

import numpy
import PIL

try:
    import resource
except ImportError:  # Windows: psutil (imported only there) gives the peak working set instead
    resource = None


def environment() -> dict:
    """Versions and platform (torch's comes from the model's process: the supervisor never imports torch)."""
    return {"python_version": platform.python_version(), "numpy_version": numpy.__version__,
            "pillow_version": PIL.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count()}


def peak_memory_mb() -> tuple[float, float]:
    """(this process, its finished children: the model's process) peak resident memory in MB."""
    if resource is None:
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20, 0.0
    scale = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is bytes on macOS, KiB on Linux
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale)
