"""Leave-one-source-out: train without a source, evaluate on that source's dev+test rows.

A large drop against the in-distribution figure means the model learned a source's
style rather than stance.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from stancekit.config import StancekitConfig
from stancekit.errors import DataError
from stancekit.training.data import LabelledData, load_labelled


def _write_subset(data: LabelledData, idx: np.ndarray, config: StancekitConfig, path: Path) -> None:
    fields = {h: config.head_field(h) for h in config.heads}
    with path.open("w") as f:
        for i in idx:
            row: dict[str, Any] = {config.data.text_field: data.texts[i]}
            if data.pairs is not None:
                row[config.data.text_pair_field] = data.pairs[i]
            for h, col in fields.items():
                y = int(data.labels[h][i])
                row[col] = config.heads[h].labels[y] if y >= 0 else None
            for k, v in data.meta.items():
                row[k] = v[i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_subset_many(parts: list[tuple[LabelledData, np.ndarray]], config: StancekitConfig, path: Path) -> None:
    chunks = []
    for k, (data, idx) in enumerate(parts):
        part = path.with_name(f"{path.stem}.{k}.jsonl")
        _write_subset(data, idx, config, part)
        chunks.append(part.read_text())
    path.write_text("".join(chunks))


def leave_one_source_out(config: StancekitConfig, source: str, out_dir: str | Path) -> dict[str, Any]:
    """Train with data.exclude_sources=[source]; report macro-F1 per head on the held-out source rows."""
    from stancekit.training.train import train

    held: list[tuple[LabelledData, np.ndarray]] = []
    dev = load_labelled(config.data.dev, config)
    for data in (dev, load_labelled(config.data.test, config) if config.data.test else None):
        if data is None:
            continue
        sources = np.array([str(s) for s in data.meta.get("source", [])])
        if len(sources) != len(data):
            raise DataError(f"{data.path}: rows have no 'source' field; leave-one-source-out needs it")
        held.append((data, np.flatnonzero(sources == source)))
    if sum(len(idx) for _, idx in held) == 0:
        raise DataError(f"source {source!r} has no dev/test rows to evaluate on")
    with tempfile.TemporaryDirectory() as tmp:
        # The held-out source leaves dev too: picking the epoch on its rows would leak.
        dev_path, eval_path = Path(tmp) / "dev.jsonl", Path(tmp) / f"heldout_{source}.jsonl"
        dev_sources = np.array([str(s) for s in dev.meta["source"]])
        _write_subset(dev, np.flatnonzero(dev_sources != source), config, dev_path)
        _write_subset_many(held, config, eval_path)
        excluded = sorted(set(config.data.exclude_sources) | {source})
        cfg = config.model_copy(
            update={
                "name": f"{config.name}-without-{source}",
                "data": config.data.model_copy(
                    update={"exclude_sources": excluded, "dev": dev_path, "test": eval_path}
                ),
            }
        )
        result = train(cfg, out_dir)
    held_out = result.metrics["splits"]["test"]
    heads = held_out["model"]["heads"]
    return {
        "source": source,
        "n_eval": heads[next(iter(heads))]["n"] if heads else 0,
        "macro_f1": {h: m["macro_f1"] for h, m in heads.items()},
        # Baselines trained on the same rows, tested on the same held-out source (when enabled).
        "baselines": {
            name: {h: m["macro_f1"] for h, m in per_head.items()}
            for name, per_head in held_out.items() if name != "model"
        },
        "artifact": str(out_dir),
    }
