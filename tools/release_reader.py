"""Read a WBCBench release (local parquet shards or the hub) into validated rows, naming file and row on any error."""
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from label_space import CLASSES, SEVERITIES

TEXT_COLUMNS = ("image_id", "label", "wbcbench_split", "severity", "original_image_id", "patient_hash")
SHARD_NAME = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")
DEMO_MARKER = "DEMO_RELEASE"  # a file at the root of a synthetic demo release (tools/make_demo_release.py)
BATCH_ROWS = 256  # rows read at a time: memory stays flat however large the shards are


class ReleaseError(ValueError):
    """A release that cannot be turned into bundle data; the message names the file, the row and the reason."""


@dataclass
class ReleaseRow:
    """One image of the release, with where it came from (for error messages)."""

    image_id: str
    label: str
    severity: str
    original_image_id: str
    patient_hash: str
    image: bytes
    source: str  # "<file>: row <n>"


def _is_text(dtype):
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def check_schema(schema: pa.Schema, source: str, *, with_image=True):
    """Raise ReleaseError unless the schema has the release columns with the release types."""
    for name in TEXT_COLUMNS:
        if name not in schema.names:
            raise ReleaseError(f"{source}: missing column '{name}' (expected columns: image, {', '.join(TEXT_COLUMNS)})")
        if not _is_text(schema.field(name).type):
            raise ReleaseError(f"{source}: column '{name}' has type {schema.field(name).type}, expected string")
    if not with_image:
        return
    if "image" not in schema.names:
        raise ReleaseError(f"{source}: missing column 'image' (expected struct<bytes: binary, path: string>)")
    image_type = schema.field("image").type
    if not (pa.types.is_struct(image_type) and image_type.get_field_index("bytes") >= 0
            and (pa.types.is_binary(image_type.field("bytes").type)
                 or pa.types.is_large_binary(image_type.field("bytes").type))):
        raise ReleaseError(f"{source}: column 'image' has type {image_type}, expected struct<bytes: binary, path: string>")


def read_legend(path: Path) -> dict:
    """class_legend.csv -> {abbreviation: cell_type}, in file order."""
    if not path.is_file():
        raise ReleaseError(f"{path}: class legend not found (expected metadata/class_legend.csv)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"abbreviation", "cell_type"} <= set(reader.fieldnames):
            raise ReleaseError(f"{path}: header {reader.fieldnames}, expected abbreviation,cell_type")
        legend = {}
        for line, row in enumerate(reader, start=2):
            if not row["abbreviation"] or row["abbreviation"] in legend:
                raise ReleaseError(f"{path}: line {line}: empty or duplicate abbreviation {row['abbreviation']!r}")
            legend[row["abbreviation"]] = row["cell_type"]
    if tuple(legend) != CLASSES:
        raise ReleaseError(f"{path}: classes {list(legend)} differ from the challenge's {list(CLASSES)} "
                           "(same codes, same order expected)")
    return legend


def verify_jpeg(data: bytes, source: str):
    """Decode the image fully (verify, then load) so a truncated or corrupt file stops the run here."""
    if not data:
        raise ReleaseError(f"{source}: empty image bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as error:  # PIL raises many types for broken files
        raise ReleaseError(f"{source}: corrupt image ({type(error).__name__}: {error})") from error
    return image_format


class LocalRelease:
    """A release folder laid out as the hub stores it: <config>/<split>-NNNNN-of-MMMMM.parquet, metadata/."""

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ReleaseError(f"{self.root}: release folder not found")
        self.name = str(self.root.resolve())

    def legend(self) -> dict:
        return read_legend(self.root / "metadata" / "class_legend.csv")

    def degradation_params(self) -> dict:
        """metadata/degradation_params.csv -> {image_id: row}, empty when the release has none."""
        return read_degradation_params(self.root / "metadata" / "degradation_params.csv")

    def is_demo(self) -> bool:
        return (self.root / DEMO_MARKER).is_file()

    def splits(self, config: str) -> list:
        folder = self.root / config
        if not folder.is_dir():
            return []
        names = {m["split"] for p in folder.glob("*.parquet") if (m := SHARD_NAME.match(p.name))}
        return sorted(names)

    def shards(self, config: str, split: str) -> list:
        """All shards of one split, checked complete (indices 0..M-1, one total M)."""
        found = {}
        for path in sorted((self.root / config).glob(f"{split}-*.parquet")):
            match = SHARD_NAME.match(path.name)
            if match and match["split"] == split:
                found[int(match["index"])] = (int(match["total"]), path)
        if not found:
            raise ReleaseError(f"{self.root / config}: no shards for split '{split}' "
                               f"(expected {split}-00000-of-MMMMM.parquet)")
        totals = {total for total, _ in found.values()}
        if len(totals) != 1:
            raise ReleaseError(f"{self.root / config}: shards of '{split}' disagree on their total: {sorted(totals)}")
        total = totals.pop()
        missing = sorted(set(range(total)) - set(found))
        extra = sorted(set(found) - set(range(total)))
        if missing or extra:
            names = [f"{split}-{i:05d}-of-{total:05d}.parquet" for i in missing]
            raise ReleaseError(f"{self.root / config}: incomplete shard set for '{split}': missing {names}"
                               + (f", unexpected indices {extra}" if extra else ""))
        return [found[i][1] for i in range(total)]

    def tables(self, config: str, split: str, columns=None):
        """Yield (source name, first row, pyarrow table) per batch of each shard, schema-checked.

        Read one row group at a time (ParquetFile.iter_batches reads the whole file first): memory is bounded by
        the row groups, 100 images in shards written by `datasets`.
        """
        for path in self.shards(config, split):
            try:
                shard = pq.ParquetFile(path)
            except Exception as error:
                raise ReleaseError(f"{path}: not a readable parquet file ({error})") from error
            check_schema(shard.schema_arrow, str(path), with_image=columns is None or "image" in columns)
            first_row = 0
            for group in range(shard.metadata.num_row_groups):
                rows = shard.read_row_group(group, columns=columns)
                for start in range(0, rows.num_rows, BATCH_ROWS):
                    yield str(path), first_row + start, rows.slice(start, BATCH_ROWS)
                first_row += rows.num_rows


class HubRelease:
    """The same release loaded with `datasets`: a hub id (online, logged in) or a local copy of the hub repository.

    A local copy (`hf download REPO --repo-type dataset --local-dir DIR`) is read the way the hub id
    is: `datasets` resolves the configs and data_files declared in its README.md front matter.
    """

    def __init__(self, repo: str):
        try:
            import datasets  # noqa: F401  (organizer extra: requirements-organizer.txt)
        except ImportError as error:
            raise ReleaseError(f"--hub {repo}: the 'datasets' package is not installed; run `make organizer-venv` "
                               "(pip install -r requirements-organizer.txt) or download the release and pass its "
                               "folder") from error
        self.repo = repo
        self.local = Path(repo) if Path(repo).is_dir() else None
        self.name = f"hub:{repo}"

    def _error(self, what, error):
        return ReleaseError(f"hub:{self.repo}: could not {what} ({type(error).__name__}: {error}); "
                            "is the machine online and logged in (hf auth login) with access "
                            "to the gated dataset?")

    def _call(self, what, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:
            raise self._error(what, error) from error

    def _file(self, name: str):
        """Path of one repository file, downloaded (or taken from the cache) for a hub id; None if it has none."""
        if self.local is not None:
            return self.local / name if (self.local / name).is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import RemoteEntryNotFoundError

        try:
            return Path(hf_hub_download(self.repo, name, repo_type="dataset"))
        except RemoteEntryNotFoundError:  # the hub answered: no such file (offline, a missing cache entry is an error)
            return None
        except Exception as error:
            raise self._error(f"download {name}", error) from error

    def legend(self) -> dict:
        path = self._file("metadata/class_legend.csv")
        if path is None:
            raise ReleaseError(f"{self.name}: metadata/class_legend.csv not found in the repository")
        return read_legend(path)

    def degradation_params(self) -> dict:
        path = self._file("metadata/degradation_params.csv")
        return read_degradation_params(path) if path is not None else {}

    def is_demo(self) -> bool:
        return self._file(DEMO_MARKER) is not None

    def splits(self, config: str) -> list:
        import datasets

        if config not in self._call("list the configs", datasets.get_dataset_config_names, self.repo):
            return []
        return sorted(self._call(f"list the splits of '{config}'", datasets.get_dataset_split_names,
                                 self.repo, config))

    def tables(self, config: str, split: str, columns=None):
        """Yield (source name, first row, pyarrow table) per batch of the split (memory-mapped by `datasets`)."""
        import datasets

        dataset = self._call(f"load {config}/{split}", datasets.load_dataset, self.repo, config, split=split)
        if "image" in dataset.column_names:
            dataset = dataset.cast_column("image", datasets.Image(decode=False))
        source = f"hub:{self.repo}/{config}/{split}"
        check_schema(dataset.features.arrow_schema, source, with_image=columns is None or "image" in columns)
        if columns:
            dataset = dataset.select_columns(columns)
        first_row = 0
        for table in dataset.with_format("arrow").iter(batch_size=BATCH_ROWS):
            yield source, first_row, table
            first_row += table.num_rows


def open_release(release_dir=None, hub=None):
    """A LocalRelease for a folder, or a HubRelease for --hub REPO."""
    return HubRelease(hub) if hub else LocalRelease(release_dir)


def read_degradation_params(path) -> dict:
    """degradation_params.csv -> {image_id: row}, empty when the file does not exist."""
    if not Path(path).is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["image_id"]: row for row in csv.DictReader(handle)}


def read_rows(release, config: str, split: str, legend: dict, *, progress=None) -> list:
    """All rows of one config/split as ReleaseRow (see iter_rows)."""
    return list(iter_rows(release, config, split, legend, progress=progress))


def iter_rows(release, config: str, split: str, legend: dict, *, progress=None):
    """Yield the rows of one config/split as ReleaseRow, batch by batch, each checked (see _check_row)."""
    seen = {}
    for source, first_row, table in release.tables(config, split):
        columns = {name: table.column(name).to_pylist() for name in TEXT_COLUMNS}
        images = table.column("image").combine_chunks().field("bytes").to_pylist()
        for index in range(table.num_rows):
            where = f"{source}: row {first_row + index}"
            values = {name: columns[name][index] for name in TEXT_COLUMNS}
            _check_row(values, where, config, split, legend)
            if values["image_id"] in seen:
                raise ReleaseError(f"{where}: duplicate image_id {values['image_id']!r} (also {seen[values['image_id']]})")
            seen[values["image_id"]] = where
            if progress is not None:
                progress.update(1)
            yield ReleaseRow(values["image_id"], values["label"], values["severity"],
                             values["original_image_id"], values["patient_hash"], images[index] or b"", where)


def _check_row(values, where, config, split, legend):
    """One row's text columns: nothing empty, label in the legend, the split it sits in, severity and link."""
    for name in ("image_id", "label", "wbcbench_split", "severity", "patient_hash"):
        if not values[name]:
            raise ReleaseError(f"{where}: empty '{name}'")
    if values["original_image_id"] is None:
        raise ReleaseError(f"{where}: null 'original_image_id' (expected \"\" for pristine rows)")
    if values["label"] not in legend:
        raise ReleaseError(f"{where}: label {values['label']!r} is not in the class legend "
                           f"(metadata/class_legend.csv: {', '.join(legend)})")
    if values["wbcbench_split"] != split:
        raise ReleaseError(f"{where}: wbcbench_split {values['wbcbench_split']!r}, expected {split!r}")
    if config == "pristine" and (values["severity"] != "pristine" or values["original_image_id"]):
        raise ReleaseError(f"{where}: pristine row with severity {values['severity']!r} and "
                           f"original_image_id {values['original_image_id']!r} (expected 'pristine' and '')")
    if config == "degraded":
        if values["severity"] not in SEVERITIES:
            raise ReleaseError(f"{where}: severity {values['severity']!r}, expected one of {SEVERITIES}")
        if not values["original_image_id"]:
            raise ReleaseError(f"{where}: degraded row without original_image_id")


def text_columns(release, config: str, split: str) -> dict:
    """The text columns of one split, {name: values} (the image bytes are not read from local shards)."""
    values = {name: [] for name in TEXT_COLUMNS}
    for _, _, table in release.tables(config, split, columns=list(TEXT_COLUMNS)):
        for name in TEXT_COLUMNS:
            values[name] += table.column(name).to_pylist()
    return values
