"""The package policy: the page lists the image's packages exactly; requirements.txt is checked, never installed."""
import re

from requirements_check import NOT_INSTALLED, VENDOR_ADVICE, check_requirements, missing_package_message
from scoring_inputs import REPO


def test_the_page_lists_exactly_the_images_packages():
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    page = (REPO / "pages" / "starting_kit.md").read_text()
    section = page[page.index("## Packages"):page.index("\n## ", page.index("## Packages") + 1)]
    listed = dict(re.findall(r"^\| ([\w-]+) \| ([\d.]+) \|$", section, flags=re.M))
    assert listed == pins
    assert "Nothing is installed for you" in section and "no allow-list" in section


def test_each_requirement_line_gets_a_status_and_nothing_is_installed():
    entries = check_requirements("# tools\nNumPy>=1.20  # satisfied\nleft-pad-xyz\nscikit_learn[extra]<0.1\n"
                                 "-r other.txt\nnot a requirement!\npywin32; sys_platform == 'win32'\n"
                                 "url-pkg @ https://example.org/x.whl\n")
    assert [(e["line"], e["name"], e["status"]) for e in entries] == [
        (2, "numpy", "satisfied"), (3, "left-pad-xyz", "missing"), (4, "scikit-learn", "version_mismatch"),
        (5, None, "unsupported"), (6, None, "invalid"), (7, "pywin32", "not_needed"), (8, "url-pkg", "missing")]
    assert entries[1]["detail"] == entries[6]["detail"] == NOT_INSTALLED
    assert entries[2]["detail"].endswith("does not match '<0.1'; the image's version is used")


def test_the_missing_package_message_gives_the_way_out():
    message = missing_package_message("cv2.dnn")
    assert message.startswith("model.py imports 'cv2.dnn' (package 'opencv-python-headless'), which is not in the "
                              "competition image, and the platform installs nothing: ")
    assert message.endswith(VENDOR_ADVICE) and "requirements.txt" not in message
    listed = missing_package_message("einops", [{"name": "einops", "status": "missing"}])
    assert listed.endswith("; listing it in requirements.txt does not install it")
