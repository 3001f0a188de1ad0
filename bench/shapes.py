"""Cost of new batch shapes, and what rounding shapes (`--pad-multiple`) buys, one run.

    python bench/shapes.py --artifact artifacts/default --backend torch-bf16

A served stream of merged requests gives the engine batches of ever new shapes (rows x
padded length). oneDNN, which runs torch's bf16 matmuls on this CPU, builds kernels for
each new matrix shape and caches them: the first batch of a shape is slower, and the
cache and allocator grow with every shape. This script shows both in one run:

1. new vs repeated shape: the same batch timed on its first call and again;
2. a stream of batches of random sizes (real corpus sentences, 5-60 rows), replayed with
   shapes rounded to multiples of 1, 4 and 8, each in a fresh process: sentences/s,
   ratio to multiple 1, distinct shapes, growth of RSS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_sentences, machine  # noqa: E402


def _predictor(artifact: str, backend: str, multiple: int):
    import logging

    from stancekit.serve.predictor import Predictor

    logging.disable(logging.WARNING)  # truncation notes per batch would flood the table
    return Predictor(artifact, backend=backend, threads=1, max_batch_tokens=16384, pad_multiple=multiple)


def worker_first_call(artifact: str, backend: str) -> dict:
    """First vs best-of-three time of the same batch, for a few batch sizes (multiple 1)."""
    pred = _predictor(artifact, backend, 1)
    sents = corpus_sentences(400, seed=1)
    pred.predict_proba(sents[:3])
    rows = []
    for start, n in ((0, 1), (10, 10), (30, 20), (60, 60), (130, 200)):
        enc = pred.encode(sents[start:start + n])
        t = time.perf_counter()
        pred.predict_encoded(enc)
        first = time.perf_counter() - t
        again = []
        for _ in range(3):
            t = time.perf_counter()
            pred.predict_encoded(enc)
            again.append(time.perf_counter() - t)
        rows.append({"rows": n, "width": max(len(x) for x in enc.ids), "first_ms": first * 1000,
                     "again_ms": min(again) * 1000})
    return {"first_call": rows}


def worker_stream(artifact: str, backend: str, multiple: int, batches: int, seed: int) -> dict:
    """Replay a seeded stream of random-size batches; sentences/s, distinct shapes, RSS growth."""
    import numpy as np
    import psutil

    from stancekit.serve.batching import round_up

    pred = _predictor(artifact, backend, multiple)
    rng = np.random.default_rng(seed)
    pool = corpus_sentences(3000, seed=seed)
    encoded = [pred.encode([pool[i] for i in rng.integers(0, len(pool), size=int(rng.integers(5, 61)))])
               for _ in range(batches)]
    pred.predict_encoded(encoded[0])
    rss0 = psutil.Process().memory_info().rss
    start = time.perf_counter()
    for enc in encoded:
        pred.predict_encoded(enc)
    elapsed = time.perf_counter() - start
    shapes = {(round_up(e.n_inputs, multiple), round_up(max(len(x) for x in e.ids), multiple)) for e in encoded}
    n = sum(e.n_inputs for e in encoded)
    return {"multiple": multiple, "sps": n / elapsed, "shapes": len(shapes),
            "rss_growth_mb": (psutil.Process().memory_info().rss - rss0) / 2**20,
            "padding": 1 - pred.stats["tokens"] / max(1, pred.stats["padded_tokens"])}


def _run(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Parse options, run each measurement in a fresh process, print the tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", default="artifacts/default")
    p.add_argument("--backend", default="torch-bf16")
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--multiples", default="1,4,8")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        result = (worker_first_call(args.artifact, args.backend) if kind == "first"
                  else worker_stream(args.artifact, args.backend, int(rest[0]), args.batches, args.seed))
        print(json.dumps(result))
        return
    common = ["--artifact", args.artifact, "--backend", args.backend, "--batches", str(args.batches),
              "--seed", str(args.seed)]
    print(f"# stancekit batch shapes, {time.strftime('%Y-%m-%d')}: backend {args.backend}, one thread; "
          f"{json.dumps(machine())}")
    print("\n| rows | padded length | first call ms | same batch again ms | first / again |")
    print("|---|---|---|---|---|")
    for r in _run([*common, "--worker", "first"])["first_call"]:
        print(f"| {r['rows']} | {r['width']} | {r['first_ms']:.1f} | {r['again_ms']:.1f} | "
              f"{r['first_ms'] / r['again_ms']:.2f}x |")
    rows = [_run([*common, "--worker", "stream", m]) for m in args.multiples.split(",")]
    base = rows[0]["sps"]
    print(f"\n{args.batches} batches of 5-60 random corpus sentences, each shape's first call included:\n")
    print(f"| pad multiple | sentences/s | x multiple {rows[0]['multiple']} | distinct shapes | padding | RSS growth MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['multiple']} | {r['sps']:.1f} | {r['sps'] / base:.2f}x | {r['shapes']} | {r['padding']:.1%} | "
              f"{r['rss_growth_mb']:.0f} |")


if __name__ == "__main__":
    main()
