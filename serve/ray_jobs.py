"""Ray Data engine for batch jobs: the local engine's chunks scored by an actor pool, written as Parquet.

The driver reads and validates the input exactly as the local engine does (same
chunks, same rejects.jsonl) and stages each chunk as one Parquet file. A Ray
dataset of those files, one block each, is mapped one chunk per call through an
actor pool whose actors load the model once (`ChunkScorer`: read the chunk, call the
local engine's `score_chunk`), and written as Parquet, then split into the
`articles` and `sentences` tables. Scoring a whole
chunk per call keeps batch composition identical to the local engine, so the two
engines give the same output. The job is committed as a whole: a killed Ray job
is rerun with --overwrite.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stancekit.errors import ConfigError
from stancekit.serve.job_rows import score_chunk
from stancekit.serve.jobs import (
    RAY_TMP,
    REJECTS,
    STAGING,
    TABLES,
    JobDir,
    JobSpec,
    JobSummary,
    Progress,
    append_rejects,
    iter_chunks,
)
from stancekit.serve.records import Record, RecordReader, Validator

STAGING_SCHEMA = pa.schema([("record", pa.int64()), ("id", pa.string()), ("text", pa.string()),
                            ("metadata", pa.string())])


class ChunkScorer:
    """Ray Data actor: loads the artifact once, then scores whole chunks with the local engine's code."""

    def __init__(self, artifact: str, backend: str | None = None, threads: int | None = None):
        from stancekit.serve.service import StanceService

        self.service = StanceService.from_artifact(artifact, backend=backend, threads=threads)

    def __call__(self, batch: dict[str, Any]) -> pa.Table:
        """Staged chunk files (one per row) -> article rows, each with its sentence rows nested in `_sentences`."""
        out = []
        for path in batch["path"]:
            records = [Record(r["record"], r["id"], r["text"], r["metadata"]) for r in pq.read_table(path).to_pylist()]
            articles, sentences = score_chunk(self.service, records)
            out.append(nest_sentences(articles, sentences))
        return pa.concat_tables(out)


def nest_sentences(articles: pa.Table, sentences: pa.Table) -> pa.Table:
    """Add a `_sentences` list column: article i gets the next n_sentences[i] sentence rows."""
    counts = articles.column("n_sentences").to_pylist()
    offsets = [0]
    for n in counts:
        offsets.append(offsets[-1] + n)
    values = pa.StructArray.from_arrays([c.combine_chunks() for c in sentences.columns], fields=list(sentences.schema))
    return articles.append_column("_sentences", pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values))


def explode_sentences(batch: pa.Table) -> pa.Table:
    """The nested sentence rows of a batch of articles, flattened into the `sentences` table."""
    return pa.Table.from_struct_array(batch.column("_sentences").combine_chunks().flatten())


@dataclass
class Staged:
    """What the driver staged: chunk files, chunk and record counts, rejects by kind, blank lines skipped."""

    files: list[str] = field(default_factory=list)
    chunks: int = 0
    records: int = 0
    last_record: int = 0
    rejects: Counter = field(default_factory=Counter)
    blank_lines: int = 0


def stage_chunks(spec: JobSpec, jobdir: JobDir, quiet: bool) -> Staged:
    """Read and validate like the local engine, append rejects, stage each chunk's records as one Parquet file."""
    reader = RecordReader(spec.input, spec.id_field, spec.text_field)
    validator = Validator(spec.input.name, spec.id_field, spec.text_field, spec.max_chars)
    staging = jobdir.root / STAGING
    staging.mkdir()
    staged = Staged()
    progress = Progress(reader.total, reader.unit, quiet)
    progress.bar.set_description("reading")
    try:
        for chunk in iter_chunks(reader, validator, spec.chunk_size):
            jobdir.state["rejects_bytes"] = append_rejects(jobdir.root / REJECTS, chunk.rejects)
            if chunk.records:
                path = staging / f"chunk-{chunk.index:06d}.parquet"
                pq.write_table(pa.table({"record": [r.number for r in chunk.records],
                                         "id": [r.id for r in chunk.records],
                                         "text": [r.text for r in chunk.records],
                                         "metadata": [r.metadata for r in chunk.records]}, schema=STAGING_SCHEMA), path)
                staged.files.append(str(path.resolve()))
            staged.chunks, staged.last_record = chunk.index + 1, chunk.last_record
            staged.records += len(chunk.records)
            staged.rejects.update(r.kind for r in chunk.rejects)
            progress.update(chunk.position, Counter())
    finally:
        progress.close()
    staged.blank_lines = reader.blank_lines
    return staged


def _connect(address: str | None, num_cpus: int | None, quiet: bool) -> bool:
    """Join the cluster at `address` or start a local Ray; True when this call started it."""
    import logging

    import ray

    if quiet:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": not quiet, "logging_level": "WARNING"}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    return True


def score_with_ray(spec: JobSpec, files: list[str], target: Path, actors: int | None, quiet: bool) -> tuple[int, int]:
    """Staged chunk files -> actor pool -> Parquet `articles` and `sentences` under `target`; returns counts."""
    import ray

    cpus_per_actor = spec.threads or 1
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # same input, same output order
    ctx.enable_progress_bars = not quiet
    if actors is None:
        actors = max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus_per_actor)
    scored = target / "_scored"
    # One block per chunk: a block is Ray's unit of parallelism, and a whole chunk per call keeps batch
    # composition equal to the local engine's. The actors read their chunk from the shared staging dir.
    # from_items needs no read tasks, and the writes reserve no CPU, so a pool that takes every CPU
    # cannot starve the tasks that feed or drain it.
    (
        ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files))
        .map_batches(
            ChunkScorer,
            # The artifact path must be readable on every node (shared file system).
            fn_constructor_kwargs={"artifact": str(Path(spec.artifact).resolve()), "backend": spec.backend,
                                   "threads": cpus_per_actor},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(actors, len(files))),
            num_cpus=cpus_per_actor,
        )
        .write_parquet(str(scored), ray_remote_args={"num_cpus": 0})
    )
    # Split the scored rows into the two tables in two streaming passes over the files just written,
    # rather than holding every result in the object store between them.
    columns = pq.read_schema(next(scored.glob("*.parquet"))).names
    ray.data.read_parquet(str(scored)).select_columns([c for c in columns if c != "_sentences"]).write_parquet(
        str(target / "articles"))
    ray.data.read_parquet(str(scored)).select_columns(["_sentences"]).map_batches(
        explode_sentences, batch_format="pyarrow", batch_size=None).write_parquet(str(target / "sentences"))
    shutil.rmtree(scored)
    n_articles, n_sentences = (sum(pq.ParquetFile(p).metadata.num_rows for p in (target / t).glob("*.parquet"))
                               for t in TABLES)
    return n_articles, n_sentences


def run_ray_job(spec: JobSpec, resume: bool = False, overwrite: bool = False, quiet: bool = False,
                address: str | None = None, actors: int | None = None, num_cpus: int | None = None) -> JobSummary:
    """Run the job with Ray Data on the cluster at `address` (default: a local Ray on `num_cpus` CPUs).

    Each actor reserves `spec.threads` CPUs (default 1) and runs its model on that many threads.
    """
    if resume:
        raise ConfigError("--resume works with --engine local only; a Ray job commits as a whole, rerun it with "
                          "--overwrite")
    if spec.format != "parquet":
        raise ConfigError(f"--engine ray writes Parquet only, got --format {spec.format}")
    if actors is not None and actors < 1:
        raise ConfigError(f"--ray-actors must be at least 1, got {actors}")
    start = time.perf_counter()
    jobdir = JobDir(spec.out, spec.format)
    jobdir.open(spec.params(), resume=False, overwrite=overwrite)
    staged = stage_chunks(spec, jobdir, quiet)
    tmp = jobdir.root / RAY_TMP
    shutil.rmtree(tmp, ignore_errors=True)
    n_articles = n_sentences = 0
    if staged.records:
        started = _connect(address, num_cpus, quiet)
        try:
            n_articles, n_sentences = score_with_ray(spec, staged.files, tmp, actors, quiet)
        finally:
            if started:
                import ray

                ray.shutdown()
    # Commit: swap the finished tables in, then record the totals in the manifest.
    for table in TABLES:
        shutil.rmtree(jobdir.root / table)
        if (tmp / table).is_dir():
            os.replace(tmp / table, jobdir.root / table)
        else:
            (jobdir.root / table).mkdir()
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(jobdir.root / STAGING)
    jobdir.state["totals"] = {"scored": n_articles, "rejected": sum(staged.rejects.values()),
                              "sentences": n_sentences, "by_kind": dict(staged.rejects)}
    jobdir.state.update(next_chunk=staged.chunks, last_record=staged.last_record)
    summary = jobdir.summary(spec, staged.blank_lines, time.perf_counter() - start,
                             Counter(scored=n_articles, sentences=n_sentences), resumed=False)
    jobdir.finish(summary)
    return summary
