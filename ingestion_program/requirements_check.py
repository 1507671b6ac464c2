"""Reads a submission's requirements.txt, says which entries the environment satisfies, installs allowed missing ones."""
import importlib
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# Packages a submission may have installed when installing is enabled (canonical names). Small, pure-Python or
# wheel-only libraries that models commonly need; torch, numpy and everything already in the image are never
# changed (see install_missing). WBC_ALLOWED_PACKAGES (comma-separated) replaces this list.
ALLOWED_PACKAGES = frozenset({
    "albumentations", "einops", "joblib", "lightgbm", "onnxruntime", "opencv-python-headless", "safetensors",
    "scikit-image", "scikit-learn", "scipy", "timm", "torchvision", "xgboost",
})
COMMENT = re.compile(r"(^|\s)#.*$")


def allowed_packages():
    """The allowed list, from WBC_ALLOWED_PACKAGES when set."""
    value = os.environ.get("WBC_ALLOWED_PACKAGES")
    if value is None:
        return ALLOWED_PACKAGES
    return frozenset(canonicalize_name(name.strip()) for name in value.split(",") if name.strip())


def logical_lines(text):
    """(line number, text) with comments and blank lines removed and backslash continuations joined."""
    lines, pending, start = [], "", None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = COMMENT.sub("", raw).rstrip()
        if start is None:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        if line:
            lines.append((start, line))
        pending, start = "", None
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def check_requirements(path):
    """One dict per requirement line: line, text, name, status, detail. Never raises on an odd line.

    Status: satisfied | missing | version_mismatch | not_needed (marker false here) | invalid | unsupported.
    """
    entries = []
    for number, text in logical_lines(Path(path).read_text(encoding="utf-8", errors="replace")):
        entry = {"line": number, "text": text, "name": None, "status": "", "detail": ""}
        entries.append(entry)
        if text.startswith("-"):
            entry.update(status="unsupported", detail="pip options are not supported; list package names only")
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            entry.update(status="invalid", detail=str(exc).splitlines()[0])
            continue
        entry["name"] = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate():
            entry.update(status="not_needed", detail=f"marker '{requirement.marker}' is false here")
            continue
        entry.update(_installed_status(requirement))
        if requirement.url:
            entry["detail"] = (entry["detail"] + "; " if entry["detail"] else "") + "URL requirements are never installed"
    return entries


def _installed_status(requirement):
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return {"status": "missing", "detail": "not installed"}
    try:
        ok = requirement.specifier.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        ok = False
    if ok:
        return {"status": "satisfied", "detail": f"installed {installed}"}
    return {"status": "version_mismatch",
            "detail": f"installed {installed} does not match '{requirement.specifier}'; installed packages are not changed"}


def install_missing(entries, timeout=None, log=print):
    """pip-install the missing entries on the allowed list, keeping every installed package at its version.

    Updates the entries' status in place (installed | not_allowed | install_failed). Extra pip arguments
    (e.g. an offline wheelhouse: `--no-index --find-links /wheels`) come from WBC_PIP_ARGS.
    """
    allowed = allowed_packages()
    to_install = []
    for entry in entries:
        if entry["status"] != "missing":
            continue
        if entry["name"] not in allowed or Requirement(entry["text"]).url:
            entry.update(status="not_allowed", detail="not installed: not on the allowed list")
        else:
            to_install.append(entry)
    if not to_install:
        return
    specs = [_without_marker(entry["text"]) for entry in to_install]
    log(f"installing {', '.join(specs)}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        pins = {}
        for dist in metadata.distributions():  # the first one found per name is the one Python imports
            if dist.metadata["Name"]:
                pins.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
        constraints.write("".join(f"{name}=={version}\n" for name, version in pins.items()))
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
               "-c", constraints.name, *os.environ.get("WBC_PIP_ARGS", "").split(), *specs]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        failure = None if done.returncode == 0 else (done.stderr or done.stdout).strip().splitlines()[-5:]
    except subprocess.TimeoutExpired:
        failure = [f"pip did not finish within {timeout:.0f} s"]
    finally:
        os.unlink(constraints.name)
    importlib.invalidate_caches()  # newly installed packages become importable in this process
    for entry in to_install:
        if failure:
            entry.update(status="install_failed", detail=" | ".join(failure))
        else:
            entry.update(status="installed", detail=_installed_status(Requirement(entry["text"]))["detail"])


def _without_marker(text):
    requirement = Requirement(text)
    requirement.marker = None
    return str(requirement)
