"""Bundles as CodaBench moves them: folders zipped as its uploader zips them, zips extracted as its worker does.

Follows codalab/codabench (2026): the uploader zips every folder competition.yaml points at; the worker's
_get_bundle extracts each zip as it is (no folder moved up), the submission's included, and _put_dir zips a step's
output for the next step. Reading never follows a link or blocks on a FIFO: a submission may leave either behind.
"""
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path

import yaml

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from competition_rules import load_competition
from regular_files import open_regular  # the ingestion's reading of regular files only
from submission_files import (DEFAULT_MAX_UNPACKED_MB, SubmissionNotRunnable, check_unpacked_size,  # the ingestion's
                              check_zip)  # own zip checks


class RunSetupError(Exception):
    """The bundle cannot be staged (not a submission failure: the run never starts)."""


class UnpackFailure(Exception):
    """CodaBench's worker could not unpack the submission zip; the message says what the participant would see."""


class NameNotUtf8(ValueError):
    """A folder to zip holds a name that is not UTF-8: Python's zipfile (CodaBench's uploader's and the worker's
    _put_dir) cannot store it, and a zip tool that stores its raw bytes leaves a name the ingestion refuses."""

    def __init__(self, folder: Path, relative: str):
        self.raw = os.fsencode(relative)
        super().__init__(f"{folder} holds a name that is not valid UTF-8 ({self.raw!r})")


def zip_folder(source: Path, target: Path | io.BytesIO) -> list[str]:
    """A folder's contents zipped as shutil.make_archive(root_dir=source) does; target: a path or a BytesIO.

    Only folders and regular files go in, each read without following a link or blocking on a FIFO (a submission
    may leave either in its output); returns the relative paths of what was left out (links, FIFOs, sockets, devices).
    NameNotUtf8 before anything is written when a name (of any of them) is not UTF-8.
    """
    _check_names(source)
    left_out = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in dirs + sorted(files):
                path = Path(root) / name
                relative = path.relative_to(source).as_posix()
                if stat.S_ISDIR(path.lstat().st_mode):
                    archive.write(path, relative)
                    continue
                try:
                    fd = open_regular(path)
                except OSError:
                    left_out.append(relative)
                    continue
                with os.fdopen(fd, "rb") as data, archive.open(zipfile.ZipInfo.from_file(path, relative), "w") as entry:
                    shutil.copyfileobj(data, entry)
    return left_out


def _check_names(source: Path) -> None:
    """NameNotUtf8 for the first name under source that is not UTF-8 (os.walk gives its bytes as surrogates)."""
    for root, dirs, files in os.walk(source):
        for name in sorted(dirs + files):
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise NameNotUtf8(source, (Path(root) / name).relative_to(source).as_posix()) from None


class BundleSource:
    """Folders of a bundle, from the repository (or an unpacked bundle) or straight from dist/bundle.zip."""

    def __init__(self, root: Path):
        self.root = root
        if not root.exists():
            raise RunSetupError(f"bundle {root} not found")
        if root.is_file() and not zipfile.is_zipfile(root):
            raise RunSetupError(f"bundle {root} is neither a folder nor a zip file")

    def competition(self) -> dict:
        """competition.yaml as the uploader reads it; RunSetupError, naming it, when it cannot be read."""
        if self.root.is_dir():
            return _read_competition(self.root / "competition.yaml", self.root / "competition.yaml")
        with zipfile.ZipFile(self.root) as archive, tempfile.TemporaryDirectory() as scratch:
            if "competition.yaml" not in archive.namelist():
                raise RunSetupError(f"{self.root} has no competition.yaml at its root")
            return _read_competition(archive.extract("competition.yaml", scratch), f"{self.root}: competition.yaml")

    def zipped(self, relative: str, target: Path | io.BytesIO) -> None:
        """The folder `relative` of the bundle as the uploader zips it, written to target (path or BytesIO)."""
        relative = str(relative).strip("/")
        if self.root.is_dir():
            if not (self.root / relative).is_dir():
                raise RunSetupError(f"{self.root / relative} is not a folder (competition.yaml points at it)")
            try:
                zip_folder(self.root / relative, target)
            except NameNotUtf8 as error:
                raise RunSetupError(f"{error}: CodaBench's uploader cannot zip it; rename it") from None
            return
        with zipfile.ZipFile(self.root) as bundle, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            members = [info for info in bundle.infolist() if info.filename.startswith(relative + "/")]
            if not members:
                raise RunSetupError(f"{self.root} has no folder {relative}/ (competition.yaml points at it)")
            for info in members:
                name = info.filename[len(relative) + 1:]
                if name:
                    with bundle.open(info) as data:
                        out.writestr(name, data.read())


def _read_competition(path: Path | str, shown: Path | str) -> dict:
    """load_competition, its every failure (unreadable, not UTF-8, not YAML, nested too deep, no mapping) a
    RunSetupError naming the file as `shown`."""
    try:
        return load_competition(Path(path))
    except (OSError, yaml.YAMLError, RecursionError, ValueError, OverflowError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else " ".join(str(error).split())[:300]
        raise RunSetupError(f"{shown}: not readable as YAML: {reason}") from None


def extract(zipped: Path | io.BytesIO, destination: Path) -> None:
    """compute_worker._get_bundle: the zip extracted into destination as it is."""
    destination.mkdir(parents=True, exist_ok=True)
    if isinstance(zipped, io.BytesIO):
        zipped.seek(0)
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(destination)


def stage_submission(submission: Path, destination: Path, scratch: Path) -> tuple[list[str], str | None]:
    """The submission zip (a folder is zipped first) extracted as the worker's _get_bundle extracts it
    (ZipFile.extractall, catching only BadZipFile); returns what of the folder the zip left out (links and special
    files) and what the ingestion's own zip checks, which a local dry run given the zip applies, say against it (None:
    nothing). UnpackFailure when the worker could not unpack it; SubmissionNotRunnable when the folder has a name that
    is not UTF-8, or the zip unpacks to more than the ingestion allows (kept here so that no zip bomb fills this
    machine's disk; the worker has no such limit)."""
    zipped, left_out = submission, []
    if submission.is_dir():
        zipped = scratch / "submission.zip"
        try:
            left_out = zip_folder(submission, zipped)
        except NameNotUtf8 as error:  # what a zip tool would make of it is a zip the ingestion refuses
            raise SubmissionNotRunnable(
                f"the submission folder {error}; rename it: names must be UTF-8 (Python's zipfile cannot store this "
                "one, and a zip tool that stores its raw bytes makes a zip whose names the ingestion refuses)"
            ) from None
    try:
        check_zip(zipped, max_bytes=2**63)  # every check but the size, for the advice
        advice = None
    except SubmissionNotRunnable as problem:
        advice = str(problem)
    try:
        with zipfile.ZipFile(zipped) as archive:
            check_unpacked_size(zipped, archive.infolist(), DEFAULT_MAX_UNPACKED_MB * 2**20)
        extract(zipped, destination)
    except zipfile.BadZipFile:
        raise UnpackFailure(BAD_ZIP) from None
    except SubmissionNotRunnable:
        raise
    except Exception as error:  # the worker catches nothing but BadZipFile: any other error of ZipFile counts
        raise UnpackFailure(_uncaught(error, advice)) from None
    return left_out, advice


BAD_ZIP = ("Bad or empty zip file (CodaBench's worker says so after 10 tries 20 s apart: it unpacks a submission with "
           "Python's ZipFile.extractall, which cannot read this one)")


def _uncaught(error: Exception, advice: str | None) -> str:
    """The outcome of an extractall error other than BadZipFile, which run_wrapper does not catch."""
    return (f"CodaBench's worker cannot unpack the submission: ZipFile.extractall raises {type(error).__name__} "
            f"({' '.join(str(error).split())[:200]}), an error it does not catch, so on CodaBench the submission "
            "keeps its status and never gets a result" + (f"; the ingestion's own check names the cause: {advice}"
                                                         if advice else ""))


def file_digests(source: Path | io.BytesIO) -> dict:
    """sha256 of every regular file in a folder (links not followed) or a zip (BytesIO) by relative path, Python's
    __pycache__ aside."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        with zipfile.ZipFile(source) as archive:
            return {info.filename: hashlib.sha256(archive.read(info)).hexdigest() for info in archive.infolist()
                    if not info.is_dir() and "__pycache__" not in Path(info.filename).parts}
    return {path.relative_to(source).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(source.rglob("*"))
            if stat.S_ISREG(path.lstat().st_mode) and "__pycache__" not in path.parts}
