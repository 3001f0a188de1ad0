"""Out-of-domain check: the model and the baselines on news-style text that no corpus row comes from.

    python bench/out_of_domain.py --artifact artifacts/default

Scores each labelled file (default: the written news probe and the one real news article)
with the artifact and with baselines fitted on the artifact's own training file, and prints
macro-F1 per head side by side. The probe is never used for training or tuning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILES = ["data/eval/news_probe/probe.jsonl", "data/eval/news_sample.jsonl"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact", default="artifacts/default")
    ap.add_argument("--data", nargs="*", default=DEFAULT_FILES, help="labelled JSONL/CSV/Parquet files")
    ap.add_argument("--out", type=Path, help="also write the table to this file")
    args = ap.parse_args()

    from stancekit.model.artifact import read_manifest
    from stancekit.serve.evaluate import artifact_config
    from stancekit.serve.service import StanceService
    from stancekit.training.compare import run_baselines
    from stancekit.training.data import IGNORE, load_labelled
    from stancekit.training.metrics import head_metrics

    artifact = Path(args.artifact)
    config = artifact_config(artifact, read_manifest(artifact))
    service = StanceService.from_artifact(artifact)
    train = load_labelled(config.data.train, config)
    lines = [
        f"# out-of-domain check: {args.artifact}; baselines fitted on {config.data.train} ({len(train)} rows)",
        "| file | head | rows | model | tfidf_lr | frozen_encoder_lr | vader | majority |",
        "|---|---|---|---|---|---|---|---|",
    ]
    files = {path: load_labelled(REPO / path, config) for path in args.data}
    # One call: the training rows are embedded once for every file's frozen-encoder baseline.
    all_baselines = run_baselines(config, train, files)
    for path, data in files.items():
        probs = service.predictor.predict_proba(data.texts, data.pairs)
        baselines = all_baselines[path]
        for head, spec in config.heads.items():
            have = data.labels[head] != IGNORE
            if not have.any():
                continue
            pred = np.asarray(probs[head]).argmax(axis=1)
            model = head_metrics(data.labels[head][have], pred[have], spec.labels)["macro_f1"]
            cells = [f"{model:.3f}"]
            for name in ("tfidf_lr", "frozen_encoder_lr", "vader", "majority"):
                m = baselines.get(name, {}).get(head)
                cells.append("–" if m is None else f"{m['macro_f1']:.3f}")
            lines.append(f"| {path} | {head} | {int(have.sum())} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
