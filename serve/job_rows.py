"""Batch job output rows: the `articles` and `sentences` schemas, a chunk scored into them, JSONL.

`score_chunk` is the one place where profiles become rows; the local engine (serve.jobs)
and the Ray engine's actors (serve.ray_jobs) both call it, so their outputs match.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from stancekit.serve.records import Record

_JSON_COLUMNS = ("metadata", "profile")  # JSON strings in Parquet, embedded objects in JSONL


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


def jsonl_bytes(table: pa.Table) -> bytes:
    """Rows as JSON lines; the JSON-string columns are embedded as objects rather than quoted."""
    embedded = [c for c in _JSON_COLUMNS if c in table.column_names]
    lines = []
    for row in table.to_pylist():
        tail = "".join(f', "{c}": {row.pop(c)}' for c in embedded)
        body = json.dumps(row, ensure_ascii=False)
        lines.append(body[:-1] + tail + "}\n" if tail else body + "\n")
    return "".join(lines).encode("utf-8")
