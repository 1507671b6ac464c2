"""The package policy: a submission runs with the competition image's packages only; nothing is ever installed.

The platform's ingestion command installs nothing, and the image has no network, so a submission's
requirements.txt is a declaration: it is checked against what is installed (status per line in run_report.json)
and never passed to pip. A package outside the image has to travel inside the zip (pure-Python code next to
model.py). pages/starting_kit.md lists the image's packages and repeats this advice.
"""
import re
from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# Import names whose package is named differently, so the advice names the package a participant would look for.
PACKAGE_OF_MODULE = {"cv2": "opencv-python-headless", "sklearn": "scikit-learn", "skimage": "scikit-image",
                     "PIL": "pillow", "yaml": "pyyaml", "google.protobuf": "protobuf"}
NOT_INSTALLED = "not in the competition image; requirements.txt is checked, never installed"
VENDOR_ADVICE = ("use the image's packages (pages/starting_kit.md lists them), or put the module's pure-Python "
                 "code in your zip next to model.py")
COMMENT = re.compile(r"(^|\s)#.*$")


def logical_lines(text: str) -> list[tuple[int, str]]:
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


def check_requirements(text: str) -> list[dict]:
    """One dict per line of requirements.txt's text: line, text, name, status, detail. Never raises on an odd line.

    Status: satisfied | missing | version_mismatch | not_needed (marker false here) | invalid | unsupported.
    Only reads: whatever the status, nothing is installed or changed.
    """
    entries = []
    for number, text in logical_lines(text):
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
        except RecursionError:  # packaging's parser recurses once per parenthesis
            entry.update(status="invalid", detail="nested too deeply to be read")
            continue
        entry["name"] = canonicalize_name(requirement.name)
        try:
            needed = requirement.marker is None or requirement.marker.evaluate()
        except (ValueError, RecursionError) as exc:  # e.g. UndefinedComparison: `python_version ~= "3"`
            entry.update(status="invalid", detail=f"marker '{requirement.marker}' cannot be evaluated ({exc})")
            continue
        if not needed:
            entry.update(status="not_needed", detail=f"marker '{requirement.marker}' is false here")
            continue
        entry.update(_installed_status(requirement))
    return entries


def _installed_status(requirement):
    try:
        installed = metadata.version(requirement.name)
    except metadata.PackageNotFoundError:
        return {"status": "missing", "detail": NOT_INSTALLED}
    try:
        ok = requirement.specifier.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        ok = False
    if ok:
        return {"status": "satisfied", "detail": f"installed {installed}"}
    return {"status": "version_mismatch",
            "detail": f"installed {installed} does not match '{requirement.specifier}'; the image's version is used"}


def missing_package_message(module_name: str, entries: list[dict] = ()) -> str:
    """What a participant reads when model.py imports a module the image lacks: the package, the rule, the way out."""
    top = module_name.split(".")[0]
    package = PACKAGE_OF_MODULE.get(module_name, PACKAGE_OF_MODULE.get(top, top))
    message = (f"model.py imports '{module_name}' (package '{package}'), which is not in the competition image, "
               f"and the platform installs nothing: {VENDOR_ADVICE}")
    if any(entry.get("name") == canonicalize_name(package) for entry in entries):
        message += "; listing it in requirements.txt does not install it"
    return message
