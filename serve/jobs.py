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

Reading and validating records is serve.records; the output tables and their rows are serve.job_rows.
"""

from __future__ import annotations

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
from stancekit.serve.job_rows import jsonl_bytes, score_chunk
from stancekit.serve.records import Record, RecordReader, Reject, Validator

JOB_MANIFEST = "job.json"
SUMMARY = "summary.json"
REJECTS = "rejects.jsonl"
TABLES = ("articles", "sentences")
FORMATS = ("parquet", "jsonl")
ENGINES = ("local", "ray")
STAGING = "_staging"  # the Ray engine's staged chunks and unfinished output
RAY_TMP = "_ray_tmp"
_OWNED = (JOB_MANIFEST, SUMMARY, REJECTS, *TABLES, STAGING, RAY_TMP)


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
    backend: str | None = None  # None: the artifact's serve.backend
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


# --- chunks ----------------------------------------------------------------------------------

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
