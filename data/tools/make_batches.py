"""Split candidates into annotation batches (pass 1) and blind double-annotation batches (pass 2).

    python data/tools/make_batches.py --candidates data/annotation/candidates.jsonl --prefix batch --n 10 --double 600
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

FIELDS = ["id", "text", "title", "speaker", "context_prev", "context_next", "country_hint"]


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps({k: r.get(k) for k in FIELDS}, ensure_ascii=False) + "\n")
    print(f"{path}: {len(rows)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=Path, required=True)
    ap.add_argument("--outdir", type=Path, default=Path("data/annotation/batches"))
    ap.add_argument("--prefix", default="batch")
    ap.add_argument("--n", type=int, default=10, help="number of pass-1 batches")
    ap.add_argument("--double", type=int, default=0, help="rows drawn (stratified by source) for a blind pass 2")
    ap.add_argument("--double-batches", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.candidates.open()]
    rng = random.Random(args.seed)
    rng.shuffle(rows)  # every annotator sees every source, so annotator and source are not confounded
    args.outdir.mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // args.n)
    for b in range(args.n):
        _write(args.outdir / f"{args.prefix}_{b + 1:02d}.jsonl", rows[b * size:(b + 1) * size])
    if args.double:
        by_source: dict[str, list[dict]] = {}
        for r in rows:
            by_source.setdefault(r["source"], []).append(r)
        picked = []
        for src_rows in by_source.values():
            picked += rng.sample(src_rows, round(args.double * len(src_rows) / len(rows)))
        rng.shuffle(picked)
        k = -(-len(picked) // args.double_batches)
        for b in range(args.double_batches):
            _write(args.outdir / f"{args.prefix}_double_{b + 1:02d}.jsonl", picked[b * k:(b + 1) * k])


if __name__ == "__main__":
    main()
