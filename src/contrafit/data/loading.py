"""Load labeled text from JSONL, CSV, TSV files or a HF ``datasets.Dataset``, with clear errors."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contrafit.errors import DataError

FIELDS = ("text", "text_pair", "label")
logger = logging.getLogger("contrafit")


@dataclass
class TextDataset:
    """Parallel lists of texts, optional second texts (pairs), and string labels (or None)."""

    texts: list[str]
    labels: list[str] | None = None
    text_pairs: list[str] | None = None
    source: str = "<memory>"
    extra: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.texts)
        for name, col in (("labels", self.labels), ("text_pairs", self.text_pairs)):
            if col is not None and len(col) != n:
                raise DataError(f"{self.source}: {name} has {len(col)} rows but texts has {n}")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pair(self) -> bool:
        return self.text_pairs is not None

    def subset(self, indices: Sequence[int]) -> TextDataset:
        def pick(col: list[Any] | None) -> list[Any] | None:
            return None if col is None else [col[i] for i in indices]

        return TextDataset(
            texts=[self.texts[i] for i in indices],
            labels=pick(self.labels),
            text_pairs=pick(self.text_pairs),
            source=self.source,
            extra={name: pick(col) for name, col in self.extra.items()},
        )

    def with_labels(self, labels: list[str]) -> TextDataset:
        return TextDataset(self.texts, list(labels), self.text_pairs, self.source)


def load_dataset(
    source: str | Path | Any,
    columns: Mapping[str, str] | None = None,
    require_labels: bool = True,
    allow_empty_text: bool = False,
) -> TextDataset:
    """Load ``source`` (a .jsonl/.json, .csv or .tsv path, or a HF Dataset).

    ``columns`` maps our field names to the file's, e.g. ``{"text": "sentence", "label": "y"}``.
    An empty text is an error unless ``allow_empty_text``: then it is kept (the model sees only
    its special tokens) and logged. Inputs to predict or evaluate should allow it, so that every
    line gets an answer.
    """
    columns = {**{f: f for f in FIELDS}, **(columns or {})}
    if not isinstance(source, (str, Path)):
        return _from_hf_dataset(source, columns, require_labels, allow_empty_text)
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"{path}: file not found. Check the path (it is read relative to {Path.cwd()})."
        )
    if path.is_dir():
        raise DataError(f"{path}: is a folder; pass a .jsonl, .csv or .tsv file")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: bytes that are not UTF-8 ({raw[e.start : e.start + 4]!r}). "
            "Re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None
    if not content.strip():
        raise DataError(f"{path}: the file is empty; expected one example per line")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        rows = _read_jsonl(content, path)
    elif suffix in (".csv", ".tsv"):
        rows = _read_delimited(content, path, delimiter="\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .tsv")
    return _build(rows, columns, str(path), require_labels, allow_empty_text)


def _read_jsonl(content: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}, line {lineno}: invalid JSON ({e.msg} at column {e.colno}). "
                'Each line must be one JSON object, e.g. {"text": "...", "label": "pos"}.'
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}, line {lineno}: expected a JSON object, got {type(obj).__name__}"
            )
        rows.append((lineno, obj))
    return rows


def _read_delimited(content: str, path: Path, delimiter: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(content), delimiter=delimiter)
    if not reader.fieldnames:
        raise DataError(f"{path}: no header row; the first line must name the columns")
    # line numbers count the header as line 1
    return [(i + 2, dict(row)) for i, row in enumerate(reader)]


def _build(
    rows: list[tuple[int, dict[str, Any]]],
    columns: Mapping[str, str],
    source: str,
    require_labels: bool,
    allow_empty_text: bool = False,
    unit: str = "line",
) -> TextDataset:
    if not rows:
        raise DataError(f"{source}: no examples found")
    first_keys = set(rows[0][1])
    text_col, pair_col, label_col = columns["text"], columns["text_pair"], columns["label"]
    has_pair = pair_col in first_keys
    has_label = label_col in first_keys
    if text_col not in first_keys:
        raise DataError(
            f"{source}, {unit} {rows[0][0]}: missing column {text_col!r}; found {sorted(first_keys)}. "
            f"Map your column with --text-column NAME (Python: columns={{'text': 'NAME'}})."
        )
    if require_labels and not has_label:
        raise DataError(
            f"{source}, {unit} {rows[0][0]}: missing column {label_col!r}; found {sorted(first_keys)}. "
            f"Map your column with --label-column NAME (Python: columns={{'label': 'NAME'}})."
        )
    texts, pairs, labels = [], [], []
    for lineno, row in rows:
        where = f"{source}, {unit} {lineno}"
        texts.append(_field_text(row, text_col, where, allow_empty_text))
        if has_pair:
            pairs.append(_field_text(row, pair_col, where, allow_empty_text))
        if has_label:
            labels.append(_field_label(row, label_col, f"{source}, {unit} {lineno}"))
    return TextDataset(
        texts=texts,
        labels=labels if has_label else None,
        text_pairs=pairs if has_pair else None,
        source=source,
    )


def _field_text(row: dict[str, Any], col: str, where: str, allow_empty: bool) -> str:
    if col not in row:
        raise DataError(f"{where}: missing field {col!r}; found {sorted(row)}")
    value = row[col]
    if not isinstance(value, str):
        raise DataError(f"{where}: field {col!r} must be a string, got {value!r}")
    if not value.strip():
        if allow_empty:
            logger.warning(
                "%s: field %r is empty; kept (classified from special tokens only)", where, col
            )
            return value
        raise DataError(
            f"{where}: field {col!r} is empty. Remove the line or give it text "
            "(or pass --allow-empty-text to keep it)."
        )
    return value


def _field_label(row: dict[str, Any], col: str, where: str) -> str:
    if col not in row or row[col] is None or (isinstance(row[col], str) and not row[col].strip()):
        raise DataError(f"{where}: field {col!r} is missing or empty")
    value = row[col]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: field {col!r} must be a string or integer, got {value!r}")
    return str(value)  # labels are strings everywhere; ints (e.g. 0/1) become "0"/"1"


def _from_hf_dataset(
    ds: Any, columns: Mapping[str, str], require_labels: bool, allow_empty_text: bool
) -> TextDataset:
    names = getattr(ds, "column_names", None)
    if names is None:
        raise DataError(f"expected a file path or a datasets.Dataset, got {type(ds).__name__}")
    label_col = columns["label"]
    # a ClassLabel feature stores ints; use its names so labels stay human-readable strings
    feature = getattr(ds, "features", {}).get(label_col) if hasattr(ds, "features") else None
    label_names = getattr(feature, "names", None)
    rows = []
    for i, row in enumerate(ds):
        row = dict(row)
        if label_names is not None and isinstance(row.get(label_col), int):
            row[label_col] = label_names[row[label_col]]
        rows.append((i + 1, row))
    return _build(rows, columns, "<datasets.Dataset>", require_labels, allow_empty_text, unit="row")
