"""Facts for the run report that come from the machine: device, versions, peak memory."""
import os
import platform
import sys

import numpy
import PIL

try:
    import resource
except ImportError:  # Windows: psutil (imported only there) gives the peak working set instead
    resource = None

ERRORS_SHOWN = 100


def torch_module():
    """torch if the submission imported it: ingestion never pays torch's import time for a model without it."""
    return sys.modules.get("torch")


def device():
    """'cuda:<name>' when the submission uses torch and a GPU is visible, else 'cpu'."""
    torch = torch_module()
    try:
        if torch is not None and torch.cuda.is_available():
            return f"cuda:{torch.cuda.get_device_name(0)}"
    except Exception:  # a broken CUDA set-up is reported as CPU, it must not fail the run
        pass
    return "cpu"


def environment():
    torch = torch_module()
    return {"python_version": platform.python_version(), "numpy_version": numpy.__version__,
            "pillow_version": PIL.__version__, "torch_version": getattr(torch, "__version__", None),
            "platform": platform.platform(), "cpu_count": os.cpu_count()}


def peak_memory_mb():
    """(this process, its finished children) peak resident memory in MB."""
    if resource is None:
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20, 0.0
    scale = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is bytes on macOS, KiB on Linux
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale)
