"""Generalisation check: train without each source, test on it; plus the authored-sentences ablation.

    python bench/leave_one_source_out.py --config configs/default.yaml --artifact artifacts/default

Prints a table beside the in-distribution figures of `--artifact` (its test split sliced by source)
and, with --write-card, stores the results in that artifact's metrics.json and model card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SOURCES = ["kremlin", "whitehouse", "un_general_debates", "newsmtsc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--artifact", default="artifacts/default", help="in-distribution model to compare with")
    ap.add_argument("--sources", default=",".join(SOURCES))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override, e.g. training.epochs=3")
    ap.add_argument("--workdir", type=Path, default=Path("runs/loso"))
    ap.add_argument("--no-authored-ablation", action="store_true")
    ap.add_argument("--write-card", action="store_true", help="add the results to --artifact's metrics and card")
    args = ap.parse_args()

    from stancekit.config import load_config
    from stancekit.training.leave_out import leave_one_source_out
    from stancekit.training.train import train

    config = load_config(args.config, args.overrides)
    results, timings = {}, {}
    for source in [s for s in args.sources.split(",") if s]:
        start = time.time()
        results[source] = leave_one_source_out(config, source, args.workdir / f"without_{source}")
        timings[source] = time.time() - start
        print(f"{source}: {results[source]['macro_f1']} ({timings[source]:.0f} s)", file=sys.stderr)
    metrics = json.loads((Path(args.artifact) / "metrics.json").read_text()) if Path(args.artifact, "metrics.json").is_file() else {}
    ablations = {}
    if not args.no_authored_ablation:
        # "With authored rows" is --artifact itself (trained with this config on all training rows).
        ablations["with authored rows (the artifact)"] = {
            h: m["macro_f1"] for h, m in metrics.get("splits", {}).get("dev", {}).get("model", {}).get("heads", {}).items()
        }
        without = load_config(args.config, args.overrides + ["training.baselines=false", "data.exclude_origins=[authored]"])
        out = train(without, args.workdir / "without_authored")
        ablations["without authored rows"] = {h: m["macro_f1"] for h, m in out.metrics["splits"]["dev"]["model"]["heads"].items()}

    slices = metrics.get("splits", {}).get("test", {}).get("model", {}).get("slices", {}).get("source", {})
    print("| held-out source | eval rows | stance F1 held out | stance F1 in distribution | TF-IDF stance F1 held out "
          "| sentiment F1 held out | sentiment F1 in distribution |")
    print("|---|---|---|---|---|---|---|")
    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    for source, r in results.items():
        ind = slices.get(source, {})
        tfidf = r.get("baselines", {}).get("tfidf_lr", {})
        print(f"| {source} | {r['n_eval']} | {fmt(r['macro_f1'].get('stance'))} | {fmt(ind.get('stance'))} | "
              f"{fmt(tfidf.get('stance'))} | {fmt(r['macro_f1'].get('sentiment'))} | {fmt(ind.get('sentiment'))} |")
    if ablations:
        print("\n| dev, same config | stance macro-F1 | sentiment macro-F1 |\n|---|---|---|")
        for name, m in ablations.items():
            print(f"| {name} | {fmt(m.get('stance'))} | {fmt(m.get('sentiment'))} |")
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "results.json").write_text(json.dumps({"leave_one_source_out": results, "ablations": ablations,
                                                           "seconds": timings}, indent=2))
    if args.write_card:
        from stancekit.training.card import add_to_card

        add_to_card(args.artifact, "leave_one_source_out", results)
        if ablations:
            add_to_card(args.artifact, "ablations", ablations)


if __name__ == "__main__":
    main()
