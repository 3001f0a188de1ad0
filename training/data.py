"""Read labelled rows (JSONL, CSV or Parquet) with `datasets` and check them before any training."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stancekit.config import StancekitConfig
from stancekit.errors import DataError

IGNORE = -100  # label id of a row without this head's label; masked out of the loss and metrics
META_FIELDS = ("id", "source", "doc_id", "date", "country", "origin", "selection", "split")
MAX_REPORTED = 20


@dataclass
class LabelledData:
    """Texts, optional text pairs, label ids per head (IGNORE where absent) and per-row metadata."""

    path: Path
    texts: list[str]
    pairs: list[str] | None
    labels: dict[str, np.ndarray]
    meta: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: np.ndarray | list[int]) -> LabelledData:
        """Rows at `idx`, in that order."""
        idx = list(map(int, idx))
        return LabelledData(
            self.path,
            [self.texts[i] for i in idx],
            None if self.pairs is None else [self.pairs[i] for i in idx],
            {h: y[idx] for h, y in self.labels.items()},
            {k: [v[i] for i in idx] for k, v in self.meta.items()},
        )


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "json"
    if suffix in (".csv", ".parquet"):
        return suffix[1:]
    raise DataError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .csv or .parquet")


def _line_numbers(path: Path, fmt: str, n_rows: int) -> list[str]:
    """Human place of each row: 'line N' for text formats, 'row N' for Parquet."""
    if fmt == "json":
        lines = [i for i, line in enumerate(path.open(encoding="utf-8"), start=1) if line.strip()]
        if len(lines) == n_rows:
            return [f"line {i}" for i in lines]
    if fmt == "csv":
        return [f"line {i + 2}" for i in range(n_rows)]  # header is line 1
    return [f"row {i + 1}" for i in range(n_rows)]


def _check_json_lines(path: Path) -> None:
    """Name the first undecodable line; datasets' own error does not."""
    with path.open("rb") as f:
        for i, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise DataError(f"{path} line {i}: not a valid UTF-8 JSON object ({err})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path} line {i}: expected a JSON object, got {type(obj).__name__}")


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a JSONL/CSV/Parquet file as dicts, read with the `datasets` library."""
    from datasets import load_dataset

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    fmt = _file_format(path)
    if fmt == "json":
        _check_json_lines(path)
    if path.stat().st_size == 0:
        return []
    try:
        ds = load_dataset(fmt, data_files=str(path), split="train", keep_in_memory=True)
    except Exception as err:  # datasets wraps parser errors in several types
        raise DataError(f"{path}: could not read as {fmt}: {err}") from None
    return ds.to_list()


def load_labelled(path: str | Path, config: StancekitConfig) -> LabelledData:
    """Read and validate labelled rows; every problem is reported with file and line before training."""
    path = Path(path)
    rows = read_table(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    places = _line_numbers(path, _file_format(path), len(rows))
    text_field, pair_field = config.data.text_field, config.data.text_pair_field
    heads = {h: (config.head_field(h), {lab: i for i, lab in enumerate(spec.labels)}) for h, spec in config.heads.items()}
    problems: list[str] = []
    texts: list[str] = []
    pairs: list[str] = []
    labels = {h: np.full(len(rows), IGNORE, dtype=np.int64) for h in heads}
    for i, row in enumerate(rows):
        where = f"{path} {places[i]}"
        text = row.get(text_field)
        if text_field not in row:
            problems.append(f"{where}: missing field {text_field!r} (set in data.text_field)")
        elif not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: field {text_field!r} is empty or not a string (got {text!r})")
        texts.append(text if isinstance(text, str) else "")
        if pair_field:
            pair = row.get(pair_field)
            if not isinstance(pair, str) or not pair.strip():
                problems.append(f"{where}: field {pair_field!r} (data.text_pair_field) is empty or missing")
            pairs.append(pair if isinstance(pair, str) else "")
        n_labelled = 0
        for h, (col, label2id) in heads.items():
            value = row.get(col)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if value not in label2id:
                problems.append(
                    f"{where}: {h} label {value!r} is not one of {', '.join(label2id)} (set in heads.{h}.labels)"
                )
                continue
            labels[h][i] = label2id[value]
            n_labelled += 1
        if n_labelled == 0 and not any(p.startswith(where) for p in problems[-len(heads) - 2:]):
            problems.append(f"{where}: no label for any head ({', '.join(c for c, _ in heads.values())} all missing)")
    if problems:
        shown = "\n  ".join(problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise DataError(f"{path}: {len(problems)} invalid row(s):\n  {shown}{more}")
    meta = {k: [row.get(k) for row in rows] for k in META_FIELDS if any(k in row for row in rows)}
    return LabelledData(path, texts, pairs if pair_field else None, labels, meta)
