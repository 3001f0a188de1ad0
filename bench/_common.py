"""Shared bench helpers: realistic sentences, machine facts, peak RSS."""

from __future__ import annotations

import json
import platform
import random
import resource
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def corpus_sentences(n: int, seed: int = 0) -> list[str]:
    """`n` real sentences from data/corpus (all splits), in a seeded order; repeats if fewer exist."""
    texts = []
    for split in ("test", "dev", "train"):
        path = REPO / "data" / "corpus" / f"{split}.jsonl"
        if path.is_file():
            texts += [json.loads(line)["text"] for line in path.open()]
    if not texts:
        from stancekit.serve.sentences import split_article

        for f in sorted((REPO / "data" / "samples").glob("*.txt")):
            texts += [s.text for s in split_article(f.read_text()).sentences]
    rng = random.Random(seed)
    rng.shuffle(texts)
    return [texts[i % len(texts)] for i in range(n)]


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB (Linux ru_maxrss is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, str]:
    """CPU model, core count and library versions for the report header."""
    import os

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("torch", "transformers", "onnxruntime", "tokenizers"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # a missing optional backend is reported, not fatal
            versions[mod] = "n/a"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(), **versions}
