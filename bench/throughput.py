"""Throughput of stancekit backends vs transformers.pipeline on the same sentences, one run.

    python bench/throughput.py --artifact artifacts/default --n 2000

Each measurement runs in its own subprocess so peak RSS is per backend. Every system
scores the whole set once to warm up (oneDNN builds its kernels per batch shape on first
use, as a long-running service does once), then the timed pass. stancekit backends run
with one worker on all threads and with one single-threaded worker per core. Prints
sentences/s, ratio to the best pipeline figure, padding share, peak RSS and the
fraction of the machine's compute bound (matmul GFLOP/s measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_sentences, machine, peak_rss_mb  # noqa: E402

BACKENDS = ["torch", "torch-bf16", "torch-int8", "onnx", "onnx-int8"]
PIPELINE_BATCHES = [1, 16, 64]


def matmul_gflops(dtype: str, size: int = 1024, seconds: float = 2.0) -> float:
    """Sustained GFLOP/s of square matmuls in torch at `dtype` on all threads."""
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(size, size, dtype=dt), torch.randn(size, size, dtype=dt)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start) / 1e9


def flops_per_sentence(artifact: Path, mean_tokens: float) -> float:
    """Forward FLOPs of one sentence: 2 x linear weights x tokens, plus attention scores and mixing."""
    cfg = json.loads((artifact / "encoder_config.json").read_text())
    d, layers, inter = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    per_token_linear = layers * (4 * d * d + 2 * d * inter)
    attention = layers * 2 * 2 * mean_tokens * mean_tokens * d
    return 2 * per_token_linear * mean_tokens + attention


def worker_stancekit(artifact: str, backend: str, n: int, threads: int | None, workers: int = 1) -> dict:
    """Score n sentences with one backend (after a warm-up pass); report rate, padding, tokens, RSS."""
    from stancekit.serve.predictor import Predictor

    sents = corpus_sentences(n)
    pred = Predictor(artifact, backend=backend, threads=threads, workers=workers)
    pred.predict_proba(sents)
    pred.stats.clear()
    start = time.perf_counter()
    pred.predict_proba(sents)
    elapsed = time.perf_counter() - start
    s = pred.stats
    return {
        "system": f"stancekit {backend}", "sps": n / elapsed, "padding": 1 - s["tokens"] / s["padded_tokens"],
        "mean_tokens": s["tokens"] / n, "rss_mb": peak_rss_mb(),
    }


def worker_pipeline(artifact: str, batch_size: int, n: int, threads: int | None) -> dict:
    """transformers.pipeline('text-classification') over the same encoder weights."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

    if threads:
        torch.set_num_threads(threads)
    art = Path(artifact)
    cfg = AutoConfig.from_pretrained(str(art / "encoder_config.json"), num_labels=3)
    model = AutoModelForSequenceClassification.from_config(cfg)
    state = {k.removeprefix("encoder."): v for k, v in load_file(str(art / "model.safetensors")).items()}
    model.base_model.load_state_dict(state, strict=False)
    tok = AutoTokenizer.from_pretrained(str(art / "tokenizer"))
    clf = pipeline("text-classification", model=model.eval(), tokenizer=tok, device=-1)
    sents = corpus_sentences(n)
    clf(sents, batch_size=batch_size, truncation=True)
    # Padding share of the pipeline's own batching (input order, pad to longest in batch).
    lengths = [len(x) for x in tok(sents, truncation=True, max_length=512)["input_ids"]]
    slots = sum(max(lengths[i:i + batch_size]) * len(lengths[i:i + batch_size]) for i in range(0, n, batch_size))
    start = time.perf_counter()
    clf(sents, batch_size=batch_size, truncation=True)
    elapsed = time.perf_counter() - start
    return {"system": f"pipeline batch={batch_size}", "sps": n / elapsed, "padding": 1 - sum(lengths) / slots,
            "mean_tokens": sum(lengths) / n, "rss_mb": peak_rss_mb()}


def _run(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", default="artifacts/default")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--workers", default=f"1,{os.cpu_count() or 1}", help="worker counts to run each backend with")
    ap.add_argument("--pipeline-batches", default=",".join(map(str, PIPELINE_BATCHES)))
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, value, *workers = args.worker
        if kind == "pipeline":
            print(json.dumps(worker_pipeline(args.artifact, int(value), args.n, args.threads)))
        else:
            print(json.dumps(worker_stancekit(args.artifact, value, args.n, args.threads, int(workers[0]))))
        return

    extra = ["--artifact", args.artifact, "--n", str(args.n)] + (["--threads", str(args.threads)] if args.threads else [])
    rows = []
    for b in [int(x) for x in args.pipeline_batches.split(",") if x]:
        rows.append(_run([*extra, "--worker", "pipeline", str(b)]) | {"system": f"pipeline batch={b}"})
    for backend in [x for x in args.backends.split(",") if x]:
        for w in sorted({int(x) for x in args.workers.split(",") if x}):
            name = f"stancekit {backend}" + (f" {w}x1 thread" if w > 1 else "")
            rows.append(_run([*extra, "--worker", "stancekit", backend, str(w)]) | {"system": name})
    peak = {"fp32": matmul_gflops("fp32"), "bf16": matmul_gflops("bf16")}
    ok = [r for r in rows if "sps" in r]
    best_pipeline = max((r["sps"] for r in ok if r["system"].startswith("pipeline")), default=float("nan"))
    mean_tokens = next((r["mean_tokens"] for r in ok if r["system"] == "stancekit torch"), 32.0)
    gflop = flops_per_sentence(Path(args.artifact), mean_tokens) / 1e9
    info = machine()
    print(f"# stancekit throughput, {date.today()}: {args.n} sentences (mean {mean_tokens:.1f} tokens), "
          f"{info['cpu']}, {info['cores']} cores; torch {info['torch']}, transformers {info['transformers']}, "
          f"onnxruntime {info['onnxruntime']}")
    print(f"# matmul: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s; "
          f"{gflop:.3f} GFLOP/sentence -> fp32 bound {peak['fp32'] / gflop:.0f} sent/s, "
          f"bf16 bound {peak['bf16'] / gflop:.0f} sent/s")
    print(f"| {'system':34s} | {'sent/s':>8s} | {'x best pipeline':>15s} | {'padding':>7s} | {'peak RSS MB':>11s} | {'of fp32 bound':>13s} | {'of bf16 bound':>13s} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 17}|{'-' * 9}|{'-' * 13}|{'-' * 15}|{'-' * 15}|")
    for r in rows:
        if "sps" not in r:
            print(f"| {r['system']:34s} | {'error: ' + r['error'][:60]}")
            continue
        bound = r["sps"] * gflop / peak["fp32"]
        print(f"| {r['system']:34s} | {r['sps']:8.1f} | {r['sps'] / best_pipeline:14.2f}x | {r['padding']:7.1%} | "
              f"{r['rss_mb']:11.0f} | {bound:13.0%} | {bound * peak['fp32'] / peak['bf16']:13.0%} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": info, "peak_gflops": peak, "gflop_per_sentence": gflop,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
