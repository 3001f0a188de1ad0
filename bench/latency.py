"""Cold start to first profile, and per-article latency p50/p99 for 20-sentence articles.

    python bench/latency.py --artifact artifacts/default --articles 200

Cold start is measured in a fresh interpreter per backend (imports, artifact
verification, model load, first profile). Also reports which heavy modules the
serving path imported (the ONNX path should import neither torch nor transformers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_sentences, machine, peak_rss_mb  # noqa: E402

COLD = """
import time, json, sys, resource
t0 = time.perf_counter()
from stancekit.serve.service import StanceService
svc = StanceService.from_artifact({artifact!r}, backend={backend!r})
prof = svc.profile(open({article!r}).read())
t1 = time.perf_counter()
print(json.dumps({{"cold_s": t1 - t0, "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "n": prof.n_sentences}}))
"""


def cold_start(artifact: str, backend: str, article: Path, repeats: int = 3) -> dict:
    """Best of `repeats` fresh-interpreter runs: seconds from first import to first profile."""
    runs = []
    for _ in range(repeats):
        code = COLD.format(artifact=artifact, backend=backend, article=str(article))
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]) | {"process_s": wall})
    return min(runs, key=lambda r: r["cold_s"])


def article_latency(artifact: str, backend: str, n_articles: int, workers: int = 1) -> dict:
    """p50/p99 seconds of StanceService.profile on 20-sentence articles, one at a time."""
    import numpy as np

    from stancekit.serve.service import StanceService

    svc = StanceService.from_artifact(artifact, backend=backend, workers=workers)
    sents = corpus_sentences(20 * n_articles, seed=1)
    articles = [" ".join(sents[i:i + 20]).replace(". ", ".\n") for i in range(0, len(sents), 20)]
    for a in articles[:5]:
        svc.profile(a)
    times = []
    for a in articles:
        start = time.perf_counter()
        svc.profile(a)
        times.append(time.perf_counter() - start)
    return {"p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99)),
            "rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", default="artifacts/default")
    ap.add_argument("--articles", type=int, default=200)
    ap.add_argument("--backends", default="torch,torch-bf16,torch-int8,onnx,onnx-int8")
    ap.add_argument("--workers", type=int, default=1, help="engine workers for the per-article runs (serve: one per core)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(article_latency(args.artifact, args.worker, args.articles, args.workers)))
        return
    article = Path(__file__).resolve().parents[1] / "data" / "samples" / "japan_abe_putin_sochi_2016.txt"
    info = machine()
    print(f"# stancekit latency, {date.today()}, {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
          f"onnxruntime {info['onnxruntime']}; cold start = fresh interpreter to first profile of the sample article; "
          f"per-article with --workers {args.workers}")
    print(f"| {'backend':11s} | {'cold start s':>12s} | {'imports torch':>13s} | {'imports transformers':>20s} | "
          f"{'cold RSS MB':>11s} | {'p50 ms/article':>14s} | {'p99 ms/article':>14s} | {'RSS MB':>6s} |")
    print("|" + "|".join("-" * (w + 2) for w in (11, 12, 13, 20, 11, 14, 14, 6)) + "|")
    for backend in [b for b in args.backends.split(",") if b]:
        try:
            cold = cold_start(args.artifact, backend, article)
            out = subprocess.run(
                [sys.executable, __file__, "--artifact", args.artifact, "--articles", str(args.articles),
                 "--workers", str(args.workers), "--worker", backend], capture_output=True, text=True, check=True,
            )
            lat = json.loads(out.stdout.strip().splitlines()[-1])
        except subprocess.CalledProcessError as err:
            print(f"| {backend:11s} | error: {(err.stderr or '').strip().splitlines()[-1:]}")
            continue
        print(f"| {backend:11s} | {cold['cold_s']:12.2f} | {str(cold['torch']):>13s} | {str(cold['transformers']):>20s} | "
              f"{cold['rss_mb']:11.0f} | {lat['p50_ms']:14.1f} | {lat['p99_ms']:14.1f} | {lat['rss_mb']:6.0f} |")


if __name__ == "__main__":
    main()
