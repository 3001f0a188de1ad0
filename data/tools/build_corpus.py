"""Assemble data/corpus/{train,dev,test}.jsonl from candidates, annotation passes, adjudication,
authored sentences and NewsMTSC sentiment-only rows; write agreement figures.

    python data/tools/build_corpus.py            # reads data/annotation/, writes data/corpus/

Provenance per row: source, doc_id, date, origin (real/authored), selection (how it was
chosen), annotation (single / double_agree / adjudicated / authored_checked).
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from stancekit.training.corpus import (
    SENTIMENT_LABELS,
    STANCE_LABELS,
    normalise,
    stratified_group_split,
)

ANN = Path("data/annotation")
AXIS = re.compile(r"\b(Russia\w*|Moscow|Putin|NATO|sanction\w*|Ukrain\w*|Crimea\w*|Kremlin)\b", re.I)
NEWSMTSC_POLARITY = {2.0: "negative", 4.0: "neutral", 6.0: "positive"}


def read_jsonl(path: Path | str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_passes() -> tuple[dict[str, dict], dict[str, dict]]:
    """Pass-1 labels (first annotation of every candidate) and pass-2 labels (blind double annotation)."""
    p1: dict[str, dict] = {}
    p2: dict[str, dict] = {}
    for f in sorted(glob.glob(str(ANN / "labels" / "*.pass1.jsonl"))):
        for r in read_jsonl(f):
            p1[r["id"]] = r
    for f in sorted(glob.glob(str(ANN / "labels" / "*.pass2.jsonl"))):
        for r in read_jsonl(f):
            p2[r["id"]] = r
    return p1, p2


def agreement(p1: dict[str, dict], p2: dict[str, dict]) -> dict:
    """Cohen's kappa per head and the confusion between passes, on rows neither pass skipped."""
    ids = [i for i in p2 if i in p1 and not p1[i].get("skip") and not p2[i].get("skip")]
    out = {"n_double": len([i for i in p2 if i in p1]), "n_compared": len(ids),
           "n_skipped_by_either": len([i for i in p2 if i in p1]) - len(ids), "heads": {}}
    for head, labels in (("stance", STANCE_LABELS), ("sentiment", SENTIMENT_LABELS)):
        a = [p1[i][head] for i in ids]
        b = [p2[i][head] for i in ids]
        out["heads"][head] = {
            "cohen_kappa": round(float(cohen_kappa_score(a, b, labels=list(labels))), 4),
            "raw_agreement": round(float(np.mean([x == y for x, y in zip(a, b)])), 4),
            "labels": list(labels),
            "confusion_pass1_rows_pass2_cols": confusion_matrix(a, b, labels=list(labels)).tolist(),
        }
    return out


def final_labels(p1: dict[str, dict], p2: dict[str, dict], adjudicated: dict[str, dict]) -> tuple[dict, list[str]]:
    """Final (stance, sentiment, country, annotation) per id; lists ids still needing adjudication."""
    out, pending = {}, []
    for i, a in p1.items():
        b = p2.get(i)
        if b is None:
            out[i] = {**a, "annotation": "single"}
            continue
        if a.get("skip") or b.get("skip"):
            if a.get("skip") and b.get("skip"):
                out[i] = {**a, "annotation": "double_agree"}
            elif i in adjudicated:
                out[i] = {**a, **adjudicated[i], "annotation": "adjudicated"}
            else:
                pending.append(i)
            continue
        if a["stance"] == b["stance"] and a["sentiment"] == b["sentiment"]:
            out[i] = {**a, "annotation": "double_agree"}
        elif i in adjudicated:
            out[i] = {**a, **adjudicated[i], "annotation": "adjudicated"}
        else:
            pending.append(i)
    return out, pending


def newsmtsc_sentiment_only(shared: Path, exclude: set[str], n: int, seed: int) -> list[dict]:
    """Sentences of NewsMTSC train whose targets all share one polarity, off the axis (axis ones are annotated)."""
    rows = []
    for d in read_jsonl(shared / "newsmtsc" / "train.jsonl"):
        text = " ".join(d["sentence_normalized"].split())
        pols = {t["polarity"] for t in d["targets"]}
        if len(pols) != 1 or AXIS.search(text) or normalise(text) in exclude:
            continue
        gid = d["primary_gid"]
        rows.append({
            "id": "nms-" + re.sub(r"\W+", "_", gid)[:80],
            "text": text, "stance": None, "sentiment": NEWSMTSC_POLARITY[pols.pop()], "source": "newsmtsc",
            "doc_id": "newsmtsc:" + "_".join(gid.split("_")[:3]), "date": "", "country": "United States",
            "origin": "real", "selection": "newsmtsc_sentiment_all_targets_agree", "annotation": "newsmtsc_targets",
        })
    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = {}
    for r in rows:
        by_label.setdefault(r["sentiment"], []).append(r)
    picked = []
    for label in SENTIMENT_LABELS:
        pool = by_label.get(label, [])
        rng.shuffle(pool)
        picked += pool[: n // 3]
    return picked


def dedupe(rows: list[dict]) -> list[dict]:
    """First row per normalised text (NewsMTSC repeats some sentences under several targets)."""
    seen, out = set(), []
    for r in rows:
        key = normalise(r["text"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def near_duplicate_groups(rows: list[dict], threshold: float = 0.85) -> list[str]:
    """Split groups: doc_id, merged (union-find) across rows whose char n-gram cosine >= threshold,
    so near-duplicates (the same quote in two briefings) never straddle train and test."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of_doc: dict[str, int] = {}
    for i, r in enumerate(rows):
        j = first_of_doc.setdefault(r["doc_id"], i)
        parent[find(i)] = find(j)
    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform([r["text"] for r in rows])
    sims = (x @ x.T).tocoo()
    for i, j, v in zip(sims.row, sims.col, sims.data):
        if i < j and v >= threshold:
            parent[find(i)] = find(j)
    return [str(find(i)) for i in range(len(rows))]


EVAL = Path("data/eval")


def eval_texts() -> list[str]:
    """Texts of the out-of-domain evaluation files, which training rows must not paraphrase."""
    return sorted({r["text"] for f in EVAL.rglob("*.jsonl") for r in read_jsonl(f) if "text" in r})


def paraphrases_of_eval(rows: list[dict], threshold: float = 0.4) -> set[str]:
    """Ids of rows whose character n-gram cosine to any evaluation text reaches `threshold`.

    The authored sentences and the written news probe retell the same real events; 0.4 catches
    retellings of one event, not just a shared topic."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    held = eval_texts()
    if not held or not rows:
        return set()
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit(held + [r["text"] for r in rows])
    sims = (vec.transform([r["text"] for r in rows]) @ vec.transform(held).T).max(axis=1).toarray().ravel()
    return {r["id"] for r, s in zip(rows, sims) if s >= threshold}


def authored_rows() -> tuple[list[dict], dict]:
    """Authored sentences whose writer's labels a blind checker confirmed; disagreements are dropped."""
    rows, stats = [], Counter()
    for f in sorted(glob.glob(str(ANN / "authored" / "authored_*.jsonl"))):
        if f.endswith(".check.jsonl"):
            continue
        check_path = Path(f.replace(".jsonl", ".check.jsonl"))
        checks = {r["id"]: r for r in read_jsonl(check_path)} if check_path.is_file() else {}
        for r in read_jsonl(f):
            stats["written"] += 1
            c = checks.get(r["id"])
            if c is None:
                stats["unchecked_dropped"] += 1
                continue
            if c["stance"] != r["stance"] or c["sentiment"] != r["sentiment"] or c.get("skip"):
                stats["checker_disagreed_dropped"] += 1
                continue
            stats["kept"] += 1
            rows.append({
                "id": r["id"], "text": r["text"], "stance": r["stance"], "sentiment": r["sentiment"],
                "source": "authored", "doc_id": "authored:" + r["id"], "date": r.get("date", ""),
                "country": r["country"], "origin": "authored", "selection": "authored:" + r.get("scenario", ""),
                "annotation": "authored_checked",
            })
    leaked = paraphrases_of_eval(rows)
    stats["kept"] -= len(leaked)
    stats["paraphrase_of_eval_dropped"] = len(leaked)
    return [r for r in rows if r["id"] not in leaked], dict(stats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data/corpus"))
    ap.add_argument("--sentiment-only", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--allow-pending", action="store_true", help="use pass-1 labels where adjudication is missing")
    args = ap.parse_args()

    candidates = {}
    for f in sorted(glob.glob(str(ANN / "candidates*.jsonl"))):
        for r in read_jsonl(f):
            candidates[r["id"]] = r
    p1, p2 = load_passes()
    adjudicated = {r["id"]: r for f in sorted(glob.glob(str(ANN / "adjudication*.jsonl"))) for r in read_jsonl(f)}
    final, pending = final_labels(p1, p2, adjudicated)
    if pending and not args.allow_pending:
        raise SystemExit(f"{len(pending)} double-annotated rows disagree and are not adjudicated, e.g. {pending[:5]}")
    for i in pending:
        final[i] = {**p1[i], "annotation": "pending_pass1"}

    real, skipped = [], Counter()
    for i, lab in final.items():
        c = candidates.get(i)
        if c is None:
            raise SystemExit(f"label for unknown candidate id {i}")
        if lab.get("skip"):
            skipped[c["source"]] += 1
            continue
        country = lab.get("country") or c.get("country_hint") or "none"
        real.append({
            "id": i, "text": c["text"], "stance": lab["stance"], "sentiment": lab["sentiment"], "source": c["source"],
            "doc_id": c["doc_id"], "date": c.get("date", ""), "country": country, "origin": "real",
            "selection": c["selection"], "annotation": lab["annotation"],
        })
    seen = {normalise(r["text"]) for r in real}
    sentiment_only = newsmtsc_sentiment_only(args.shared, seen, args.sentiment_only, args.seed)
    seen |= {normalise(r["text"]) for r in sentiment_only}
    authored, authored_stats = authored_rows()
    authored = [r for r in authored if normalise(r["text"]) not in seen]

    pool = dedupe(real + sentiment_only)
    strata = [r["stance"] or f"none:{r['sentiment']}" for r in pool]
    splits = stratified_group_split(strata, near_duplicate_groups(pool), (0.8, 0.1, 0.1), args.seed)
    for r, s in zip(pool, splits):
        r["split"] = str(s)
    for r in authored:
        r["split"] = "train"
    rows = pool + authored
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        part = sorted((r for r in rows if r["split"] == split), key=lambda r: r["id"])
        with (args.out / f"{split}.jsonl").open("w") as f:
            for r in part:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{split}: {len(part)} rows")
    stats = {
        "agreement": agreement(p1, p2),
        "adjudicated": len([1 for v in final.values() if v["annotation"] == "adjudicated"]),
        "pending": len(pending),
        "skipped_non_content_by_source": dict(skipped),
        "authored": authored_stats,
        "sentiment_only_rows": len(sentiment_only),
    }
    (args.out / "annotation_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats["agreement"], indent=1)[:1500])


if __name__ == "__main__":
    main()
