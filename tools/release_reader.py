"""Read a WBCBench release (local parquet shards or the hub) into validated rows, naming file and row on any error."""
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vocabulary import CLASSES, SEVERITIES

TEXT_COLUMNS = ("image_id", "label", "wbcbench_split", "severity", "original_image_id", "patient_hash")
SHARD_NAME = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")


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
        path = self.root / "metadata" / "degradation_params.csv"
        if not path.is_file():
            return {}
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["image_id"]: row for row in csv.DictReader(handle)}

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
        """Yield (source name, pyarrow table) per shard, schema-checked."""
        for path in self.shards(config, split):
            try:
                schema = pq.read_schema(path)
            except Exception as error:
                raise ReleaseError(f"{path}: not a readable parquet file ({error})") from error
            check_schema(schema, str(path), with_image=columns is None or "image" in columns)
            yield str(path), pq.read_table(path, columns=columns)


class HubRelease:
    """The same release loaded with `datasets` from the hub (needs network and an authenticated token)."""

    def __init__(self, repo: str):
        try:
            import datasets  # noqa: F401  (optional: not in the pinned requirements)
        except ImportError as error:
            raise ReleaseError(f"--hub {repo}: the 'datasets' package is not installed; install it "
                               "(pip install datasets) or download the release and pass its folder") from error
        self.repo = repo
        self.name = f"hub:{repo}"

    def _call(self, what, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as error:
            raise ReleaseError(f"hub:{self.repo}: could not {what} ({type(error).__name__}: {error}); "
                               "is the machine online and logged in (huggingface-cli login) with access "
                               "to the gated dataset?") from error

    def legend(self) -> dict:
        from huggingface_hub import hf_hub_download

        path = self._call("download metadata/class_legend.csv", hf_hub_download, self.repo,
                          "metadata/class_legend.csv", repo_type="dataset")
        return read_legend(Path(path))

    def degradation_params(self) -> dict:
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(self.repo, "metadata/degradation_params.csv", repo_type="dataset")
        except Exception:
            return {}
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["image_id"]: row for row in csv.DictReader(handle)}

    def splits(self, config: str) -> list:
        import datasets

        return sorted(self._call(f"list the splits of '{config}'", datasets.get_dataset_split_names,
                                 self.repo, config))

    def tables(self, config: str, split: str, columns=None):
        import datasets

        dataset = self._call(f"load {config}/{split}", datasets.load_dataset, self.repo, config, split=split)
        if "image" in dataset.column_names:
            dataset = dataset.cast_column("image", datasets.Image(decode=False))
        table = dataset.with_format("arrow")[:]
        source = f"hub:{self.repo}/{config}/{split}"
        check_schema(table.schema, source, with_image=columns is None or "image" in columns)
        yield source, table.select(columns) if columns else table


def open_release(release_dir=None, hub=None):
    """A LocalRelease for a folder, or a HubRelease for --hub REPO."""
    return HubRelease(hub) if hub else LocalRelease(release_dir)


def read_rows(release, config: str, split: str, legend: dict, *, progress=None) -> list:
    """All rows of one config/split as ReleaseRow, each checked: label in the legend, severity, split, ids."""
    rows, seen = [], {}
    for source, table in release.tables(config, split):
        columns = {name: table.column(name).to_pylist() for name in TEXT_COLUMNS}
        images = table.column("image").combine_chunks().field("bytes").to_pylist()
        for index in range(table.num_rows):
            where = f"{source}: row {index}"
            values = {name: columns[name][index] for name in TEXT_COLUMNS}
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
                                   f"original_image_id {values['original_image_id']!r} "
                                   "(expected 'pristine' and '')")
            if config == "degraded":
                if values["severity"] not in SEVERITIES:
                    raise ReleaseError(f"{where}: severity {values['severity']!r}, expected one of {SEVERITIES}")
                if not values["original_image_id"]:
                    raise ReleaseError(f"{where}: degraded row without original_image_id")
            if values["image_id"] in seen:
                raise ReleaseError(f"{where}: duplicate image_id {values['image_id']!r} (also {seen[values['image_id']]})")
            seen[values["image_id"]] = where
            rows.append(ReleaseRow(values["image_id"], values["label"], values["severity"],
                                   values["original_image_id"], values["patient_hash"], images[index] or b"", where))
            if progress is not None:
                progress.update(1)
    return rows


def patient_hashes(release, config: str, split: str) -> set:
    """The patient hashes of one split (reads only that column)."""
    hashes = set()
    for _, table in release.tables(config, split, columns=list(TEXT_COLUMNS)):
        hashes.update(table.column("patient_hash").to_pylist())
    return hashes
