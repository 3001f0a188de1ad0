"""Round-2 candidates: a first model's probabilities pick minority-label and uncertain sentences.

Per source, new sentences (never labelled before) from axis documents are scored by a
model trained on round 1; selected are the most probable `pro_us_alignment` in Kremlin
text, the most probable `pro_russia_engagement` in White House text, both in UN speeches
(so every source carries every label, against a "source style = stance" shortcut), and
the highest-entropy sentences everywhere (uncertainty sampling). `selection` records which.

    python data/tools/mine_round2.py --artifact runs/round1 --out data/annotation/candidates_round2.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from mine_candidates import (
    MAX_WORDS,
    MIN_WORDS,
    _doc_sentences,
    _sid,
    classify_cue,
    kremlin_docs,
    un_docs,
    whitehouse_docs,
)

from stancekit.serve.predictor import Predictor
from stancekit.training.corpus import normalise

PLAN = {  # source -> [(label to maximise or "entropy", count)]
    "kremlin": [("pro_us_alignment", 260), ("entropy", 80)],
    "whitehouse": [("pro_russia_engagement", 220), ("entropy", 80)],
    "un_general_debates": [("pro_us_alignment", 110), ("pro_russia_engagement", 80), ("entropy", 60)],
}


def pool(docs, exclude: set[str], rng: random.Random, per_doc: int = 60) -> list[dict]:
    """Unlabelled sentences with an axis cue, at most `per_doc` per document."""
    out = []
    for doc in docs:
        sents = _doc_sentences(doc["paragraphs"])
        rows = []
        for i, (text, speaker) in enumerate(sents):
            if not (MIN_WORDS <= len(text.split()) <= MAX_WORDS) or text.endswith("?"):
                continue
            if normalise(text) in exclude or classify_cue(text) is None:
                continue
            rows.append({
                "text": text, "source": doc["source"], "doc_id": doc["doc_id"], "date": doc["date"],
                "title": doc["title"], "country_hint": doc["country_hint"], "speaker": speaker,
                "context_prev": sents[i - 1][0] if i else "",
                "context_next": sents[i + 1][0] if i + 1 < len(sents) else "",
            })
        rng.shuffle(rows)
        out += rows[:per_doc]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("data/annotation/candidates_round2.jsonl"))
    ap.add_argument("--seed", type=int, default=29)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    exclude = set()
    for f in Path("data/annotation").glob("candidates*.jsonl"):
        if f.resolve() != args.out.resolve():
            exclude |= {normalise(json.loads(line)["text"]) for line in f.open()}
    predictor = Predictor(args.artifact)
    stance_labels = predictor.heads["stance"]
    sources = {
        "kremlin": kremlin_docs(args.shared / "kremlin_en_news/kremlin_en_president_news.jsonl"),
        "whitehouse": whitehouse_docs(args.shared / "whitehouse_briefings_russia/wh_docs_russia.jsonl"),
        "un_general_debates": un_docs(args.shared / "un_general_debates"),
    }
    chosen: list[dict] = []
    for source, docs in sources.items():
        rows = pool(docs, exclude, rng)
        probs = predictor.predict_proba([r["text"] for r in rows])["stance"]
        taken = np.zeros(len(rows), dtype=bool)
        per_doc: dict[str, int] = {}
        for target, count in PLAN[source]:
            if target == "entropy":
                score = -(probs * np.log(probs + 1e-12)).sum(1)
            else:
                score = probs[:, stance_labels.index(target)]
            n = 0
            for i in np.argsort(-score, kind="stable"):
                if n >= count:
                    break
                if taken[i] or per_doc.get(rows[i]["doc_id"], 0) >= 3:
                    continue
                taken[i] = True
                per_doc[rows[i]["doc_id"]] = per_doc.get(rows[i]["doc_id"], 0) + 1
                n += 1
                sel = "model:uncertainty" if target == "entropy" else f"model:p_{target}"
                chosen.append({**rows[i], "selection": sel, "model_p": round(float(score[i]), 4)})
        print(f"{source}: pool {len(rows)}, chose {int(taken.sum())}")
    with args.out.open("w") as f:
        for r in chosen:
            f.write(json.dumps({"id": _sid(r["source"], r["doc_id"], r["text"]), **r}, ensure_ascii=False) + "\n")
    print(f"wrote {len(chosen)} to {args.out}")


if __name__ == "__main__":
    main()
