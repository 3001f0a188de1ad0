"""Batch job input: read JSONL, CSV or Parquet records and validate each into a Record or a Reject.

`RecordReader` streams raw records and tracks how far into the file it is (bytes for
text files, rows for Parquet) for the progress bar. Decoding problems travel with the
raw record rather than stopping the read; `Validator` then turns every raw record into
a `Record` (a valid article) or a `Reject` whose reason names the file, record number,
field and rule. Chunking and scoring live in serve.jobs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stancekit.errors import DataError

_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Record:
    """A valid article: record number, id, text, and the other fields as a JSON object string."""

    number: int
    id: str
    text: str
    metadata: str


@dataclass(frozen=True)
class Reject:
    """A bad record: where it is, its id when one could be read, the rule it broke."""

    number: int
    line: int | None
    id: str | None
    kind: str
    reason: str

    def to_json(self) -> str:
        """One line of rejects.jsonl."""
        return json.dumps({"record": self.number, "line": self.line, "id": self.id, "kind": self.kind,
                           "reason": self.reason}, ensure_ascii=False)


@dataclass
class RawRecord:
    """A record as read: its fields, or a decoding problem (kind, message) and whatever fields survived."""

    number: int
    line: int | None
    fields: dict[str, Any] | None
    error: tuple[str, str] | None = None


class RecordReader:
    """Streams raw records from JSONL, CSV or Parquet; `position` counts bytes (text) or rows (Parquet)."""

    def __init__(self, path: str | Path, id_field: str = "id", text_field: str = "text"):
        self.path = Path(path)
        self.kind = _KINDS.get(self.path.suffix.lower())
        if self.kind is None:
            raise DataError(f"{self.path}: unsupported file type {self.path.suffix!r}; use .jsonl, .csv or .parquet")
        self.fields = (id_field, text_field)
        self.position = self.blank_lines = 0
        if self.kind == "parquet":
            try:
                self._parquet_file = pq.ParquetFile(self.path)
            except (OSError, pa.ArrowException) as err:
                raise DataError(f"{self.path}: not a readable Parquet file ({err})") from None
            self._require_columns(self._parquet_file.schema_arrow.names)
            self.total, self.unit = self._parquet_file.metadata.num_rows, "rows"
        else:
            self.total, self.unit = self.path.stat().st_size, "B"

    def _require_columns(self, names: Sequence[str]) -> None:
        for name, option in zip(self.fields, ("--id-field", "--text-field")):
            if name not in names:
                raise DataError(f"{self.path}: no column {name!r} ({option}); columns are {', '.join(names)}")

    def __iter__(self) -> Iterator[RawRecord]:
        self.position = self.blank_lines = 0
        return {"jsonl": self._jsonl, "csv": self._csv, "parquet": self._parquet}[self.kind]()

    def _jsonl(self) -> Iterator[RawRecord]:
        number = 0
        with self.path.open("rb") as f:
            for line_no, raw in enumerate(f, start=1):
                self.position += len(raw)
                if not raw.strip():
                    self.blank_lines += 1
                    continue
                number += 1
                yield _parse_json_line(raw, number, line_no)

    def _csv(self) -> Iterator[RawRecord]:
        csv.field_size_limit(2**31 - 1)  # long texts are judged by --max-chars, not by the csv module

        def lines() -> Iterator[str]:
            for raw in f:
                self.position += len(raw)
                # surrogateescape keeps bad bytes as lone surrogates, so the validator rejects that record only
                yield raw.decode("utf-8", "surrogateescape")

        with self.path.open("rb") as f:
            rows = csv.reader(lines())
            header = next(rows, None)
            if header is None:
                return
            header[0] = header[0].removeprefix("\ufeff")
            self._require_columns(header)
            number, consumed = 0, rows.line_num
            while True:
                try:
                    row = next(rows)
                    error = None
                except StopIteration:
                    return
                except csv.Error as err:
                    row, error = [], ("malformed_csv", f"malformed CSV ({err})")
                line, consumed = consumed + 1, rows.line_num
                if not row and error is None:
                    self.blank_lines += 1
                    continue
                number += 1
                if len(row) > len(header):
                    error = ("malformed_csv", f"row has {len(row)} fields, the header has {len(header)}")
                yield RawRecord(number, line, dict(zip(header, row)), error)

    def _parquet(self) -> Iterator[RawRecord]:
        number = 0
        for batch in self._parquet_file.iter_batches(batch_size=1024):
            try:
                rows: list[Any] = batch.to_pylist()
            except (UnicodeDecodeError, pa.ArrowException):  # one bad string cell: find it row by row
                rows = []
                for i in range(batch.num_rows):
                    try:
                        rows.append(batch.slice(i, 1).to_pylist()[0])
                    except (UnicodeDecodeError, pa.ArrowException) as err:
                        rows.append(("invalid_utf8", f"row is not valid UTF-8 ({err})"))
            for row in rows:
                number += 1
                self.position = number
                if isinstance(row, tuple):
                    yield RawRecord(number, None, None, row)
                else:
                    yield RawRecord(number, None, row)


def _parse_json_line(raw: bytes, number: int, line: int) -> RawRecord:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        try:  # recover the id, if the bad byte is elsewhere, for the rejects file
            salvaged = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            salvaged = None
        rule = f"line is not valid UTF-8 (byte {raw[err.start:err.start + 1]!r} at offset {err.start})"
        return RawRecord(number, line, salvaged if isinstance(salvaged, dict) else None, ("invalid_utf8", rule))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return RawRecord(number, line, None, ("invalid_json", f"line is not valid JSON ({err.msg}: column {err.colno})"))
    if not isinstance(obj, dict):
        return RawRecord(number, line, None, ("not_an_object", f"expected a JSON object, got {type(obj).__name__}"))
    return RawRecord(number, line, obj)


def _bad_char(value: str) -> int | None:
    """Index of the first character that cannot be written as UTF-8 (a lone surrogate), or None."""
    try:
        value.encode("utf-8")
        return None
    except UnicodeEncodeError as err:
        return err.start


class Validator:
    """Raw records -> Record or Reject; ids already scored make later records with that id duplicates."""

    def __init__(self, source: str, id_field: str = "id", text_field: str = "text", max_chars: int = 100_000):
        self.source, self.id_field, self.text_field, self.max_chars = source, id_field, text_field, max_chars
        self.seen: dict[str, int] = {}  # id -> record number that scored it

    def __call__(self, raw: RawRecord) -> Record | Reject:
        fields = raw.fields or {}
        value = fields.get(self.id_field)
        rid = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else None

        def reject(kind: str, rule: str) -> Reject:
            return Reject(raw.number, raw.line, rid, kind, f"{self.source} record {raw.number}: {rule}")

        if raw.error is not None:
            return reject(*raw.error)
        idf, tf = self.id_field, self.text_field
        if value is None or value == "":
            return reject("missing_id", f"no id in field {idf!r} (--id-field)")
        if rid is None:
            return reject("bad_id", f"field {idf!r} must be a string or integer, got {type(value).__name__} {value!r:.60}")
        text = fields.get(tf)
        if text is None:
            return reject("missing_text", f"no text in field {tf!r} (--text-field)")
        if not isinstance(text, str):
            return reject("text_not_string", f"field {tf!r} must be a string, got {type(text).__name__} {text!r:.60}")
        if not text.strip():
            return reject("empty_text", f"field {tf!r} is empty or whitespace only")
        if len(text) > self.max_chars:
            return reject("text_too_long", f"text has {len(text)} characters, over the limit of {self.max_chars} "
                                           "(--max-chars)")
        metadata = json.dumps({k: v for k, v in fields.items() if k != idf and k != tf}, ensure_ascii=False, default=str)
        for name, s in ((tf, text), (idf, rid), ("metadata", metadata)):
            bad = _bad_char(s)
            if bad is not None:
                return reject("invalid_utf8", f"{name} is not valid UTF-8 (undecodable byte or lone surrogate "
                                              f"{s[bad]!r} at character {bad})")
        first = self.seen.get(rid)
        if first is not None:
            return reject("duplicate_id", f"id {rid!r} was already scored at record {first}")
        self.seen[rid] = raw.number
        return Record(raw.number, rid, text, metadata)
