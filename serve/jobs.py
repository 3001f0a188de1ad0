"""Batch scoring jobs: an article file in, profiles and sentences out, bad records kept, resumable.

A job reads records (JSONL, CSV or Parquet), validates each one (bad records go to
``rejects.jsonl`` with a reason, never stop the job), scores valid articles in chunks
of ``chunk_size`` with ``StanceService.profile_many`` and commits every chunk
atomically: part files first, then the small ``job.json`` manifest that says how far
the job got. A job killed at any moment resumes from its last committed chunk, and
because chunk boundaries depend only on the input and the options, the resumed output
equals an uninterrupted run. Layout of OUTDIR::

    job.json            options, progress (next chunk, last record, rejects bytes), totals, status
    articles/part-NNNNNN.parquet|jsonl    one row per scored article
    sentences/part-NNNNNN.parquet|jsonl   one row per content sentence
    rejects.jsonl       {"record", "line", "id", "kind", "reason"} per bad record
    summary.json        counts when the job is done: read = scored + rejected
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stancekit.errors import ConfigError, DataError

JOB_MANIFEST = "job.json"
SUMMARY = "summary.json"
REJECTS = "rejects.jsonl"
TABLES = ("articles", "sentences")
FORMATS = ("parquet", "jsonl")
ENGINES = ("local", "ray")
STAGING = "_staging"  # the Ray engine's staged chunks and unfinished output
RAY_TMP = "_ray_tmp"
_OWNED = (JOB_MANIFEST, SUMMARY, REJECTS, *TABLES, STAGING, RAY_TMP)
_KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_JSON_COLUMNS = ("metadata", "profile")  # JSON strings in Parquet, embedded objects in JSONL


@dataclass(frozen=True)
class JobSpec:
    """What a job scores and how; every field but `out` must match when a job is resumed."""

    input: Path
    out: Path
    artifact: Path
    id_field: str = "id"
    text_field: str = "text"
    format: str = "parquet"
    chunk_size: int = 256
    max_chars: int = 100_000
    backend: str = "torch"
    threads: int | None = None  # per model; results can differ in the last float bit between thread counts
    engine: str = "local"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.chunk_size < 1:
            raise ConfigError(f"--chunk-size must be at least 1, got {self.chunk_size}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be at least 1, got {self.threads}")
        if self.max_chars < 1:
            raise ConfigError(f"--max-chars must be at least 1, got {self.max_chars}")
        if not Path(self.input).is_file():
            raise DataError(f"{self.input}: input file not found")
        if not (Path(self.artifact) / "manifest.json").is_file():
            raise ConfigError(f"--artifact {self.artifact}: no manifest.json there (train one with `stancekit train`)")

    def params(self) -> dict[str, Any]:
        """Identity of the job: options plus fingerprints of the input file and the artifact."""
        from stancekit.model.artifact import sha256_file

        stat = Path(self.input).stat()
        out = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items() if k != "out"}
        out["input"] = str(Path(self.input).resolve())
        out["artifact"] = str(Path(self.artifact).resolve())
        out.update(input_bytes=stat.st_size, input_mtime_ns=stat.st_mtime_ns,
                   artifact_manifest_sha256=sha256_file(Path(self.artifact) / "manifest.json"))
        return out


@dataclass
class Chunk:
    """A run of consecutive input records: `chunk_size` valid ones (fewer at the end) and the rejects among them."""

    index: int
    records: list[Record]
    rejects: list[Reject]
    last_record: int
    position: int  # progress units (bytes or rows) consumed after this chunk


@dataclass
class JobSummary:
    """Counts of a finished job (read = scored + rejected) and this run's speed."""

    input: str
    out: str
    engine: str
    read: int
    scored: int
    rejected: int
    sentences: int
    rejected_by_kind: dict[str, int]
    blank_lines: int
    chunks: int
    seconds: float
    scored_this_run: int
    sentences_this_run: int
    resumed: bool = False

    def render(self) -> str:
        """A few human-readable lines for the terminal."""
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.rejected_by_kind.items())) or "none"
        rate = self.scored_this_run / self.seconds if self.seconds else 0.0
        srate = self.sentences_this_run / self.seconds if self.seconds else 0.0
        return (
            f"{self.input} -> {self.out} ({self.engine} engine{', resumed' if self.resumed else ''})\n"
            f"  records read {self.read} = scored {self.scored} + rejected {self.rejected} ({kinds})\n"
            f"  sentences {self.sentences}; {self.seconds:.1f} s, {rate:.1f} articles/s, {srate:.0f} sentences/s"
            + (f"\n  rejects: {Path(self.out) / REJECTS}" if self.rejected else "")
        )


# --- reading and validation ------------------------------------------------------------------

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
        return RawRecord(number, line, None, ("invalid_json", f"line is not valid JSON ({err.msg}, column {err.colno})"))
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


def iter_chunks(reader: RecordReader, validator: Validator, chunk_size: int) -> Iterator[Chunk]:
    """Validate records in file order and group them into chunks; boundaries depend only on the input."""
    records: list[Record] = []
    rejects: list[Reject] = []
    index = last = 0
    for raw in reader:
        item = validator(raw)
        (records if isinstance(item, Record) else rejects).append(item)
        last = raw.number
        if len(records) == chunk_size:
            yield Chunk(index, records, rejects, last, reader.position)
            index, records, rejects = index + 1, [], []
    if records or rejects:
        yield Chunk(index, records, rejects, last, reader.position)


# --- scoring into rows -----------------------------------------------------------------------

def article_schema(heads: dict[str, list[str]]) -> pa.Schema:
    """Columns of the `articles` output: ids, metadata, flattened profile, full profile JSON."""
    cols = [("id", pa.string()), ("record", pa.int64()), ("metadata", pa.string()), ("n_sentences", pa.int64()),
            ("n_dropped", pa.int64()), ("lean", pa.float64()), ("lean_ci_low", pa.float64()),
            ("lean_ci_high", pa.float64())]
    for h, labels in heads.items():
        for lab in labels:
            cols += [(f"{h}_{lab}_count", pa.int64()), (f"{h}_{lab}_share", pa.float64()),
                     (f"{h}_{lab}_mean_probability", pa.float64())]
        cols.append((f"{h}_uncertain", pa.int64()))
    return pa.schema(cols + [("profile", pa.string())])


def sentence_schema(heads: dict[str, list[str]]) -> pa.Schema:
    """Columns of the `sentences` output: article id, index, offsets, text, speaker, labels, probabilities."""
    cols = [("id", pa.string()), ("sentence_index", pa.int64()), ("start", pa.int64()), ("end", pa.int64()),
            ("text", pa.string()), ("speaker", pa.string())]
    for h, labels in heads.items():
        cols += [(f"{h}_label", pa.string()), (f"{h}_confidence", pa.float64()), (f"{h}_uncertain", pa.bool_())]
        cols += [(f"{h}_p_{lab}", pa.float64()) for lab in labels]
    return pa.schema(cols)


def score_chunk(service: Any, records: Sequence[Record]) -> tuple[pa.Table, pa.Table]:
    """Profile the records with `service.profile_many` and flatten into (articles, sentences) tables."""
    heads = service.heads
    profiles = service.profile_many([r.text for r in records], [r.id for r in records], include_sentences=True)
    a_schema, s_schema = article_schema(heads), sentence_schema(heads)
    arts: dict[str, list] = {name: [] for name in a_schema.names}
    sents: dict[str, list] = {name: [] for name in s_schema.names}
    for rec, prof in zip(records, profiles):
        arts["id"].append(rec.id)
        arts["record"].append(rec.number)
        arts["metadata"].append(rec.metadata)
        arts["n_sentences"].append(prof.n_sentences)
        arts["n_dropped"].append(prof.n_dropped)
        lean = prof.lean
        arts["lean"].append(lean.score if lean else None)
        arts["lean_ci_low"].append(lean.ci_low if lean else None)
        arts["lean_ci_high"].append(lean.ci_high if lean else None)
        for h, summary in prof.heads.items():
            for lab, s in summary.labels.items():
                arts[f"{h}_{lab}_count"].append(s.count)
                arts[f"{h}_{lab}_share"].append(s.share)
                arts[f"{h}_{lab}_mean_probability"].append(s.mean_probability)
            arts[f"{h}_uncertain"].append(summary.n_uncertain)
        # The stored profile is exactly what the Python API returns without sentences.
        arts["profile"].append(prof.model_copy(update={"sentences": None, "dropped": None}).model_dump_json())
        for i, sent in enumerate(prof.sentences or []):
            sents["id"].append(rec.id)
            sents["sentence_index"].append(i)
            sents["start"].append(sent.start)
            sents["end"].append(sent.end)
            sents["text"].append(sent.text)
            sents["speaker"].append(sent.speaker)
            for h, hp in sent.heads.items():
                sents[f"{h}_label"].append(hp.label)
                sents[f"{h}_confidence"].append(hp.confidence)
                sents[f"{h}_uncertain"].append(hp.uncertain)
                for lab, p in hp.probabilities.items():
                    sents[f"{h}_p_{lab}"].append(p)
    return pa.table(arts, schema=a_schema), pa.table(sents, schema=s_schema)


# --- writing ---------------------------------------------------------------------------------

def _fsync_replace(tmp: Path, target: Path) -> None:
    os.replace(tmp, target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON through a temporary file and an atomic rename, so readers see old or new, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_replace(tmp, path)


def jsonl_bytes(table: pa.Table) -> bytes:
    """Rows as JSON lines; the JSON-string columns are embedded as objects rather than quoted."""
    embedded = [c for c in _JSON_COLUMNS if c in table.column_names]
    lines = []
    for row in table.to_pylist():
        tail = "".join(f', "{c}": {row.pop(c)}' for c in embedded)
        body = json.dumps(row, ensure_ascii=False)
        lines.append(body[:-1] + tail + "}\n" if tail else body + "\n")
    return "".join(lines).encode("utf-8")


def write_part(table: pa.Table, path: Path, fmt: str) -> None:
    """Write one part file atomically (temporary name, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        if fmt == "parquet":
            pq.write_table(table, f)
        else:
            f.write(jsonl_bytes(table))
        f.flush()
        os.fsync(f.fileno())
    _fsync_replace(tmp, path)


def append_rejects(path: Path, rejects: Sequence[Reject]) -> int:
    """Append reject lines, fsync, and return the file's new length in bytes."""
    with path.open("ab") as f:
        # backslashreplace: a lone surrogate in an id or reason must not make the rejects file unreadable
        f.write("".join(r.to_json() + "\n" for r in rejects).encode("utf-8", "backslashreplace"))
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


# --- chunk commits and the manifest ----------------------------------------------------------

def _new_state(params: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": 1, "status": "running", "params": params, "next_chunk": 0, "last_record": 0,
            "rejects_bytes": 0, "totals": {"scored": 0, "rejected": 0, "sentences": 0, "by_kind": {}}}


class JobDir:
    """OUTDIR of a job: refuses to clobber finished work, commits chunks atomically, resumes."""

    def __init__(self, root: Path, fmt: str = "parquet"):
        self.root = Path(root)
        self.fmt = fmt
        self.manifest = self.root / JOB_MANIFEST
        self.state: dict[str, Any] = {}

    def part(self, table: str, index: int) -> Path:
        """Path of one chunk's part file."""
        return self.root / table / f"part-{index:06d}.{self.fmt}"

    def open(self, params: dict[str, Any], resume: bool, overwrite: bool) -> dict[str, Any]:
        """Start, resume or refuse, per --resume/--overwrite; returns the manifest state."""
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other: resume keeps the output, overwrite deletes it")
        old = self._read_manifest()
        if overwrite:
            self.clear()
            old = None
        elif old is None and any((self.root / name).exists() for name in _OWNED):
            raise DataError(f"{self.root}: holds job output but no readable {JOB_MANIFEST}; pass --overwrite to replace it")
        elif old is not None and not resume:
            if old["status"] == "done":
                t = old["totals"]
                raise DataError(f"{self.root}: already holds a finished job ({t['scored']} scored, {t['rejected']} "
                                "rejected); pass --overwrite to score again")
            raise DataError(f"{self.root}: holds an unfinished job (committed up to record {old['last_record']}); "
                            "pass --resume to finish it or --overwrite to start again")
        if old is not None:
            changed = [f"{k} was {old['params'].get(k)!r}, now {v!r}" for k, v in params.items()
                       if old["params"].get(k) != v]
            if changed:
                diff = "; ".join(changed)
                raise DataError(f"{self.root}: cannot resume, the job was started with other inputs or options "
                                f"({diff}); rerun with the original ones or pass --overwrite")
            self.state = old
            self._drop_uncommitted()
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.state = _new_state(params)
            write_json_atomic(self.manifest, self.state)
        for table in TABLES:
            (self.root / table).mkdir(exist_ok=True)
        return self.state

    def _read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest.is_file():
            return None
        try:
            return json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def clear(self) -> None:
        """Delete everything a job writes in OUTDIR (and nothing else)."""
        for name in _OWNED:
            p = self.root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def _drop_uncommitted(self) -> None:
        # A kill between writing parts and the manifest leaves parts and reject lines past the
        # committed point; they are recomputed identically, so drop them.
        rejects = self.root / REJECTS
        if rejects.exists():
            with rejects.open("r+b") as f:
                f.truncate(self.state["rejects_bytes"])
        for table in TABLES:
            for p in (self.root / table).glob("part-*"):
                index = int(p.name.split("-")[1].split(".")[0])
                if index >= self.state["next_chunk"] or p.name.endswith(".tmp"):
                    p.unlink()

    def commit(self, chunk: Chunk, articles: pa.Table, sentences: pa.Table) -> None:
        """Write the chunk's parts and rejects, then advance the manifest (the commit point)."""
        write_part(articles, self.part("articles", chunk.index), self.fmt)
        write_part(sentences, self.part("sentences", chunk.index), self.fmt)
        rejects_bytes = append_rejects(self.root / REJECTS, chunk.rejects)
        self.record(chunk, articles.num_rows, sentences.num_rows, rejects_bytes)

    def record(self, chunk: Chunk, n_articles: int, n_sentences: int, rejects_bytes: int) -> None:
        """Advance the manifest past `chunk` with its counts."""
        s = self.state
        t = s["totals"]
        t["scored"] += n_articles
        t["sentences"] += n_sentences
        t["rejected"] += len(chunk.rejects)
        for r in chunk.rejects:
            t["by_kind"][r.kind] = t["by_kind"].get(r.kind, 0) + 1
        s.update(next_chunk=chunk.index + 1, last_record=chunk.last_record, rejects_bytes=rejects_bytes)
        write_json_atomic(self.manifest, s)

    def finish(self, summary: JobSummary) -> None:
        """Write summary.json, then mark the job done."""
        write_json_atomic(self.root / SUMMARY, asdict(summary))
        self.state["status"] = "done"
        write_json_atomic(self.manifest, self.state)

    def summary(self, spec: JobSpec, blank_lines: int, seconds: float, this_run: Counter, resumed: bool) -> JobSummary:
        """The summary from the manifest's totals and this run's counters."""
        t = self.state["totals"]
        return JobSummary(
            input=str(spec.input), out=str(spec.out), engine=spec.engine, read=t["scored"] + t["rejected"],
            scored=t["scored"], rejected=t["rejected"], sentences=t["sentences"],
            rejected_by_kind=dict(sorted(t["by_kind"].items())), blank_lines=blank_lines,
            chunks=self.state["next_chunk"], seconds=round(seconds, 3), scored_this_run=this_run["scored"],
            sentences_this_run=this_run["sentences"], resumed=resumed,
        )


# --- the job ---------------------------------------------------------------------------------

@dataclass
class Progress:
    """tqdm bar over the input (bytes or rows) with articles/s and sentences/s of this run."""

    total: int
    unit: str
    quiet: bool
    start: float = field(default_factory=time.perf_counter)
    bar: Any = None

    def __post_init__(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, unit=self.unit, unit_scale=self.unit == "B", disable=self.quiet,
                        desc="scoring", dynamic_ncols=True)

    def update(self, position: int, counts: Counter) -> None:
        """Move the bar to `position` and show this run's rates."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(position - self.bar.n)
        self.bar.set_postfix_str(f"{counts['scored'] / elapsed:.1f} articles/s, "
                                 f"{counts['sentences'] / elapsed:.0f} sentences/s", refresh=False)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


def run_job(spec: JobSpec, resume: bool = False, overwrite: bool = False, quiet: bool = False,
            service: Any = None) -> JobSummary:
    """Score `spec.input` into `spec.out` with the local engine (see the module docstring)."""
    if spec.engine != "local":
        raise ConfigError(f"run_job runs the local engine; --engine {spec.engine} goes through its own runner")
    start = time.perf_counter()
    jobdir = JobDir(spec.out, spec.format)
    had_manifest = jobdir.manifest.is_file()
    state = jobdir.open(spec.params(), resume=resume, overwrite=overwrite)
    reader = RecordReader(spec.input, spec.id_field, spec.text_field)
    this_run: Counter = Counter()
    if state["status"] != "done":
        if service is None:
            from stancekit.serve.service import StanceService

            service = StanceService.from_artifact(spec.artifact, backend=spec.backend, threads=spec.threads)
        progress = Progress(reader.total, reader.unit, quiet)
        validator = Validator(spec.input.name, spec.id_field, spec.text_field, spec.max_chars)
        try:
            for chunk in iter_chunks(reader, validator, spec.chunk_size):
                if chunk.index < state["next_chunk"]:  # committed before the restart: only replay validation
                    if chunk.index == state["next_chunk"] - 1 and chunk.last_record != state["last_record"]:
                        raise DataError(f"{spec.input}: chunk {chunk.index} now ends at record {chunk.last_record}, "
                                        f"the job's manifest says {state['last_record']}; pass --overwrite")
                else:
                    articles, sentences = score_chunk(service, chunk.records)
                    jobdir.commit(chunk, articles, sentences)
                    this_run["scored"] += articles.num_rows
                    this_run["sentences"] += sentences.num_rows
                progress.update(chunk.position, this_run)
        finally:
            progress.close()
        summary = jobdir.summary(spec, reader.blank_lines, time.perf_counter() - start, this_run, had_manifest)
        jobdir.finish(summary)
        return summary
    return JobSummary(**json.loads((spec.out / SUMMARY).read_text(encoding="utf-8")))


def read_output(out: str | Path, table: str) -> pa.Table:
    """All parts of one output table (articles or sentences) of a finished job, in input order."""
    root = Path(out) / table
    parts = sorted(p for p in root.iterdir() if p.suffix in (".parquet", ".jsonl"))
    if not parts:
        return pa.table({})
    if parts[0].suffix == ".jsonl":
        return pa.Table.from_pylist([json.loads(line) for p in parts for line in p.open(encoding="utf-8")])
    return pa.concat_tables([pq.read_table(p) for p in parts])
