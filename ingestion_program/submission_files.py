"""The supervisor's checks of a submission's files: unpacking a zipped one, finding model.py, reading requirements.txt.

Each problem is a SubmissionNotRunnable naming the file, the entry and what was expected; nothing here runs the
submission's code (model_runner.py does, in the model's own process).
"""
import errno
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regular_files import file_kind, open_regular, reader


class SubmissionNotRunnable(Exception):
    """The submission cannot be run; `traceback` holds the tail of the participant's traceback, if any."""

    def __init__(self, message: str, traceback_tail: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback_tail


REQUIREMENTS_MAX_BYTES, REQUIREMENTS_MAX_LINES = 1_000_000, 1_000
DEFAULT_MAX_UNPACKED_MB = 4096  # WBC_MAX_UNPACKED_MB: the ingestion's option; the emulator uses this default
UTF8_FLAG, ENCRYPTED_FLAG = 0x800, 0x1
UNPACKED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
MAX_NAME_BYTES, MAX_PATH_BYTES = 255, 1024  # one file or folder name (Linux's limit); a whole path inside the zip
UNPACK_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the machine's room, not the zip, is at fault


def unpack_zip(zip_path: Path, into: Path, max_bytes: int = DEFAULT_MAX_UNPACKED_MB * 2**20) -> Path:
    """A submission given as a zip: every entry is checked first (name, password, compression method, a link or other
    special file, a file and a folder of one name, total size), then unpacked one by one; any problem is a
    SubmissionNotRunnable."""
    with _opened_zip(zip_path) as archive:
        for info, relative in _checked_entries(zip_path, archive.infolist(), max_bytes):
            _unpack(zip_path, archive, info, Path(into, *relative))
    return Path(into)


def check_zip(zip_path: Path, max_bytes: int = DEFAULT_MAX_UNPACKED_MB * 2**20) -> None:
    """unpack_zip's checks alone, nothing written: SubmissionNotRunnable for the first problem."""
    with _opened_zip(zip_path) as archive:
        _checked_entries(zip_path, archive.infolist(), max_bytes)


@contextmanager
def _opened_zip(zip_path: Path) -> Iterator[zipfile.ZipFile]:
    """The zip, opened as a regular file only; what makes it unreadable as a zip is a SubmissionNotRunnable."""
    try:
        fd = open_regular(zip_path)
    except OSError as error:
        raise SubmissionNotRunnable(f"the submission {zip_path} cannot be read ({error})") from None
    try:
        with reader(fd) as handle, zipfile.ZipFile(handle) as archive:
            yield archive
    except UnicodeDecodeError:  # a name flagged UTF-8 that is not
        raise SubmissionNotRunnable(f"the submission zip {zip_path} has a file name that is not valid UTF-8; "
                                    "rename the file or zip it again with a current zip tool") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:  # not a zip at all, or its directory is broken
        raise SubmissionNotRunnable(f"the submission {zip_path} is not a valid zip file ({exc})") from None
    finally:
        os.close(fd)


def _checked_entries(zip_path: Path, members: list[zipfile.ZipInfo], max_bytes: int) -> list[tuple]:
    """(entry, its path parts) for every entry that unpacks to something, as zipfile would place it (absolute paths
    and '..' dropped); refuses what cannot be unpacked as it is."""
    zip_name = f"the submission zip {zip_path}"
    entries, files, folders = [], set(), set()
    for info in members:
        name = info.filename
        if not info.flag_bits & UTF8_FLAG:  # zipfile read the name as cp437: its raw bytes must still be UTF-8
            try:
                info.orig_filename.encode("cp437").decode("utf-8")
            except UnicodeError:
                raise SubmissionNotRunnable(f"{zip_name} has a file name that is not valid UTF-8 "
                                            f"({info.orig_filename!r}); rename the file or zip it again with a "
                                            "current zip tool") from None
        if info.flag_bits & ENCRYPTED_FLAG:
            raise SubmissionNotRunnable(f"{zip_name} has an encrypted entry ({name!r}); zip it again without a "
                                        "password")
        if info.compress_type not in UNPACKED_METHODS:
            method = zipfile.compressor_names.get(info.compress_type, "unknown")
            raise SubmissionNotRunnable(f"{zip_name} stores {name!r} with compression method {info.compress_type} "
                                        f"({method}), which cannot be unpacked; zip it again with deflate, the "
                                        "default of zip tools")
        _refuse_special_entry(zip_name, info)
        parts = tuple(part for part in name.split("/") if part not in ("", ".", ".."))
        if not parts:
            continue
        longest = max(len(part.encode("utf-8")) for part in parts)
        if longest > MAX_NAME_BYTES or len("/".join(parts).encode("utf-8")) > MAX_PATH_BYTES:
            raise SubmissionNotRunnable(f"{zip_name} has an entry whose name is too long ({name[:80]!r}...); "
                                        f"at most {MAX_NAME_BYTES} bytes per file or folder name and "
                                        f"{MAX_PATH_BYTES} in all")
        (folders if info.is_dir() else files).add(parts)
        folders.update(parts[:i] for i in range(1, len(parts)))
        entries.append((info, parts))
    both = sorted(files & folders)
    if both:
        raise SubmissionNotRunnable(f"{zip_name} has both a file and a folder named {'/'.join(both[0])!r}; rename "
                                    "one of them")
    check_unpacked_size(zip_path, members, max_bytes)
    return entries


def check_unpacked_size(zip_path: Path, members: list[zipfile.ZipInfo], max_bytes: int) -> None:
    """Refuses a zip whose entries would take more than max_bytes unpacked (a zip bomb fills no disk)."""
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise SubmissionNotRunnable(f"the submission zip {zip_path} unpacks to {total / 2**20:,.0f} MB, more than the "
                                    f"{max_bytes / 2**20:,.0f} MB allowed (WBC_MAX_UNPACKED_MB)")


def _refuse_special_entry(zip_name: str, info: zipfile.ZipInfo) -> None:
    """Refuses an entry whose Unix mode (external_attr's high 16 bits) is a link, a FIFO, a device or a socket.

    CodaBench's worker unpacks a submission with Python's ZipFile.extractall, which makes every entry a plain file
    holding its stored bytes: a link becomes a text file holding the path it pointed to, so a linked model.py fails
    later on its import with a NameError that names no link. Refused here, by name, before anything runs.
    """
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: a zip tool that records no Unix mode (plain files)
        return
    holding, fix = (("the path the link points to", "put the file itself in the zip (zip stores links only when "
                     "given -y or --symlinks)") if kind == stat.S_IFLNK
                    else ("the bytes stored for it", "leave it out of the zip"))
    raise SubmissionNotRunnable(f"{zip_name} holds {info.filename!r} as {file_kind(mode)}; CodaBench unpacks a "
                                f"submission with Python's zipfile, which makes it a plain file holding {holding}: "
                                f"{fix}")


def _unpack(zip_path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """One entry to target; a broken entry (bad data, bad checksum, a name the file system refuses) is named."""
    try:
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, open(target, "wb") as copy:
            shutil.copyfileobj(source, copy)
    except UNPACK_ERRORS as exc:
        module, name = type(exc).__module__, type(exc).__name__
        kind = name if module == "builtins" else f"{module}.{name}"  # zlib.error, zipfile.BadZipFile
        fix = ("the disk it is unpacked to is full (a smaller submission, or more room for the run)"
               if getattr(exc, "errno", None) in DISK_FULL else "zip it again with a current zip tool")
        raise SubmissionNotRunnable(f"the submission zip {zip_path} cannot be unpacked at {info.filename!r} "
                                    f"({kind}: {exc}); {fix}") from None


def read_requirements(path: Path) -> str | None:
    """requirements.txt's text, None when the submission has none; refused when not a regular file or too large to be
    a list of packages."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SubmissionNotRunnable(f"requirements.txt cannot be read ({error}); put the file itself in the "
                                    "submission") from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(REQUIREMENTS_MAX_BYTES + 1)
        size = os.fstat(fd).st_size
    lines = len(data.splitlines()) if len(data) <= REQUIREMENTS_MAX_BYTES else None
    if lines is None or lines > REQUIREMENTS_MAX_LINES:
        raise SubmissionNotRunnable(f"requirements.txt is too large ({max(size, len(data)):,} bytes"
                                    + (f", {lines:,} lines" if lines else "")
                                    + f"; at most {REQUIREMENTS_MAX_BYTES:,} bytes and {REQUIREMENTS_MAX_LINES:,} "
                                    "lines): list only the packages model.py imports")
    return data.decode("utf-8", errors="replace")


def find_model_dir(submission_dir: Path) -> tuple[Path, str | None]:
    """(folder holding model.py, note or None); one enclosing folder (a zipped folder) is accepted and noted."""
    model_dir, note = _locate_model_dir(Path(submission_dir))
    _refuse_unpacked_link(model_dir / "model.py")
    return model_dir, note


def _locate_model_dir(submission_dir: Path) -> tuple[Path, str | None]:
    """find_model_dir's search: the top, then one folder down."""
    if not submission_dir.is_dir():
        raise SubmissionNotRunnable(_not_a_folder(submission_dir))
    if (submission_dir / "model.py").is_file():
        return submission_dir, None
    below = [d for d in sorted(submission_dir.iterdir())
             if d.is_dir() and d.name != "__MACOSX" and not d.name.startswith(".") and (d / "model.py").is_file()]
    if len(below) == 1:
        return below[0], (f"model.py found one level down, in {below[0].name}/ (the zip has an enclosing folder); "
                          "using that folder as the submission")
    if below:
        raise SubmissionNotRunnable("no model.py at the top of the submission, and several one level down ("
                                    + ", ".join(f"{d.name}/model.py" for d in below)
                                    + "); zip the files of one submission, without an enclosing folder")
    found = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in submission_dir.iterdir())[:10]) or "nothing"
    raise SubmissionNotRunnable(f"no model.py in the submission (looked at the top and one folder down; found: "
                                f"{found}); put model.py at the top of your zip")


def _refuse_unpacked_link(model_file: Path) -> None:
    """Refuses a model.py that is what a zipped link becomes once CodaBench's worker unpacked it: a plain file holding
    only a path ('real_model.py', '../src/model.py').

    On the platform the worker unpacks the zip before the ingestion runs, so unpack_zip never sees the link; without
    this the import fails with a NameError that names no link. One word with no space and no '=' defines no
    Model: no working model.py looks so.
    """
    try:
        if not stat.S_ISREG(os.lstat(model_file).st_mode) or os.path.getsize(model_file) > MAX_PATH_BYTES:
            return
        text = model_file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return  # the import reports it
    if text and not any(c.isspace() or c == "=" for c in text) and ("/" in text or text.endswith(".py")):
        raise SubmissionNotRunnable(f"model.py holds only the path {text[:80]!r}, as a symbolic link in a zip does "
                                    "once unpacked: CodaBench unpacks a submission with Python's zipfile, which makes "
                                    "a link a plain file holding the path it points to, not the file itself: put the "
                                    "file itself in the zip (zip stores links only when given -y or --symlinks)")


def _not_a_folder(path: Path) -> str:
    """Why path, which is neither a folder nor a file a zip was read from, is no submission: missing, or what it is
    (a FIFO or a device given as the submission is named, not reported as missing)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return f"submission folder not found: {path}"
    except OSError as error:
        return f"the submission {path} cannot be read ({error})"
    return f"the submission {path} is {file_kind(mode)}, not a folder or a zip file; give a submission folder or zip"
