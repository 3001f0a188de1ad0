"""Kremlin sentences voiced by non-Russian speakers (foreign leaders, journalists) with alignment cues.

Kremlin text rarely carries `pro_us_alignment`; when it does, the voice is usually a foreign
leader at a joint press conference or a journalist quoting Western positions. These rows
keep every source carrying every label, so "Kremlin style" cannot stand in for stance.

    PYTHONPATH=data/tools python data/tools/mine_kremlin_voices.py --n 200
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from mine_candidates import MAX_WORDS, MIN_WORDS, _doc_sentences, _sid, kremlin_docs

from stancekit.training.corpus import normalise

RUSSIAN_VOICES = re.compile(
    r"Putin|Medvedev|Peskov|Lavrov|Ushakov|Shoigu|Russia|Russian|Kremlin|Presidential|Governor|Head of|Question|Next",
    re.I,
)
# Foreign leaders speak in Kremlin transcripts of joint events with them.
JOINT_EVENT = re.compile(r"press (statements|conference)|news conference|joint|talks with|following .*talks", re.I)
ALIGN_STRONG = re.compile(r"\b(sanction\w*|NATO|Crimea\w*|Ukrain\w*|alliance|allies|solidarity|Minsk|annex\w*)\b", re.I)
WESTERN_POSITION = re.compile(
    r"\b(the West|Western|partners|Washington|the United States|NATO|EU|European Union)\b.*\b"
    r"(demand\w*|insist\w*|sanction\w*|condemn\w*|expan\w*|pressure\w*|deploy\w*|isolat\w*)", re.I,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data/annotation/candidates_round2_kremlin_voices.jsonl"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=31)
    args = ap.parse_args()
    exclude = set()
    for f in Path("data/annotation").glob("candidates*.jsonl"):
        if f.resolve() != args.out.resolve():
            exclude |= {normalise(json.loads(line)["text"]) for line in f.open()}
    pool = []
    for doc in kremlin_docs(args.shared / "kremlin_en_news/kremlin_en_president_news.jsonl"):
        sents = _doc_sentences(doc["paragraphs"])
        for i, (text, speaker) in enumerate(sents):
            if not (MIN_WORDS <= len(text.split()) <= MAX_WORDS) or text.endswith("?") or normalise(text) in exclude:
                continue
            joint = bool(JOINT_EVENT.search(doc["title"] or ""))
            foreign = joint and bool(speaker) and not RUSSIAN_VOICES.search(speaker)
            if (foreign and ALIGN_STRONG.search(text)) or WESTERN_POSITION.search(text):
                pool.append({
                    "text": text, "source": "kremlin", "doc_id": doc["doc_id"], "date": doc["date"],
                    "title": doc["title"], "country_hint": doc["country_hint"], "speaker": speaker,
                    "context_prev": sents[i - 1][0] if i else "",
                    "context_next": sents[i + 1][0] if i + 1 < len(sents) else "",
                    "selection": "cue:kremlin_foreign_voice" if foreign else "cue:kremlin_reported_western_position",
                })
    random.Random(args.seed).shuffle(pool)
    per_doc: dict[str, int] = {}
    chosen = []
    for r in pool:
        if len(chosen) >= args.n:
            break
        if per_doc.get(r["doc_id"], 0) >= 3:
            continue
        per_doc[r["doc_id"]] = per_doc.get(r["doc_id"], 0) + 1
        chosen.append(r)
    with args.out.open("w") as f:
        for r in chosen:
            f.write(json.dumps({"id": _sid(r["source"], r["doc_id"], r["text"]), **r}, ensure_ascii=False) + "\n")
    print(f"pool {len(pool)}, wrote {len(chosen)} to {args.out}")


if __name__ == "__main__":
    main()
