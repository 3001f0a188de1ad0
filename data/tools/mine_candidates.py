"""Mine annotation candidates from ../shared/data into data/annotation/candidates.jsonl.

Random sampling of these sources is ~85 % neutral, so candidates are mined by
cue groups (Russia actor + engagement or alignment cues) plus a share of plain
background sentences from the same documents, so `neutral` stays realistic.
Each row records how it was selected (`selection`). Deterministic for a seed.

    python data/tools/mine_candidates.py --shared ../shared/data --out data/annotation/candidates.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

from stancekit.serve.sentences import split_sentences

ACTOR = re.compile(r"\b(Russia\w*|Moscow|Putin|Kremlin|Lavrov|Medvedev|Soviet)\b")
WEST = re.compile(
    r"\b(United States|U\.S\.|USA|America\w*|Washington|NATO|the West|Western|European Union|EU|G7|G-7|allies|alliance)\b"
)
ENGAGE = re.compile(
    r"\b(dialogue|talks|negotiat\w*|summit|cooperat\w*|partner\w*|trade|investment\w*|energy|gas|oil|pipeline"
    r"|peace treaty|ceasefire|peace deal|peace agreement|engag\w*|reset|multipolar\w*|strategic stability|arms control"
    r"|New START|lift\w* (the )?sanctions|eas\w* (the )?sanctions|friendship|ties|relations|diplomac\w*|mutual\w*)\b",
    re.I,
)
ALIGN = re.compile(
    r"\b(sanction\w*|NATO|allies|alliance|united front|solidarity|unity|united|aggression|invasion|invade\w*"
    r"|annex\w*|accountab\w*|deter\w*|contain\w*|transatlantic|export controls|price cap|isolat\w*|security assistance"
    r"|support for Ukraine|stand with|illegal|war crimes|sovereignty|territorial integrity|Crimea|Ukraine)\b",
    re.I,
)
COUNTRIES = [
    "Japan", "India", "China", "Turkey", "Germany", "France", "United Kingdom", "Britain", "Italy", "Hungary",
    "Serbia", "Vietnam", "Ukraine", "Poland", "Belarus", "Kazakhstan", "Georgia", "Israel", "Iran", "Syria",
    "Saudi Arabia", "United Arab Emirates", "Qatar", "Egypt", "Brazil", "South Africa", "Finland", "Austria",
    "Greece", "Cyprus", "Armenia", "Azerbaijan", "Mongolia", "Korea", "Indonesia", "Pakistan", "Venezuela",
    "Cuba", "Moldova", "Latvia", "Lithuania", "Estonia", "Slovakia", "Czech", "Bulgaria", "Kyrgyzstan",
    "Uzbekistan", "Tajikistan", "Sweden", "Norway", "Canada", "Mexico", "Argentina", "Afghanistan",
]
UN_COUNTRY = {
    "RUS": "Russia", "USA": "United States", "JPN": "Japan", "UKR": "Ukraine", "CHN": "China", "DEU": "Germany",
    "FRA": "France", "GBR": "United Kingdom", "POL": "Poland", "BLR": "Belarus", "IND": "India", "TUR": "Turkey",
    "KAZ": "Kazakhstan", "GEO": "Georgia",
}
SPEAKER = re.compile(r"^((?:[A-Z][\w.'\-]*|of|the|de|von)(?: (?:[A-Z][\w.'\-]*|of|the|de|von)){0,6}):\s+")
MIN_WORDS, MAX_WORDS = 7, 60


def _sid(source: str, doc_id: str, text: str) -> str:
    return source[:3] + "-" + hashlib.sha1(f"{doc_id}|{text}".encode()).hexdigest()[:10]


ADJECTIVES = {
    "Japanese": "Japan", "Indian": "India", "Chinese": "China", "Turkish": "Turkey", "German": "Germany",
    "French": "France", "British": "United Kingdom", "Italian": "Italy", "Hungarian": "Hungary",
    "Serbian": "Serbia", "Vietnamese": "Vietnam", "Ukrainian": "Ukraine", "Polish": "Poland",
    "Belarusian": "Belarus", "Kazakh": "Kazakhstan", "Georgian": "Georgia", "Israeli": "Israel",
    "Iranian": "Iran", "Syrian": "Syria", "Saudi": "Saudi Arabia", "Emirati": "United Arab Emirates",
    "Egyptian": "Egypt", "Brazilian": "Brazil", "Finnish": "Finland", "Austrian": "Austria", "Greek": "Greece",
    "Armenian": "Armenia", "Azerbaijani": "Azerbaijan", "Mongolian": "Mongolia", "Korean": "Korea",
    "Indonesian": "Indonesia", "Pakistani": "Pakistan", "Venezuelan": "Venezuela", "Cuban": "Cuba",
    "Moldovan": "Moldova", "Slovak": "Slovakia", "Bulgarian": "Bulgaria", "Kyrgyz": "Kyrgyzstan",
    "Uzbek": "Uzbekistan", "Tajik": "Tajikistan", "Argentine": "Argentina", "Mexican": "Mexico",
}


def _country_in(title: str) -> str | None:
    for c in COUNTRIES:
        if c in title:
            return "United Kingdom" if c == "Britain" else c
    for adj, c in ADJECTIVES.items():
        if re.search(rf"\b{adj}\b", title):
            return c
    return None


def _clean_md(text: str) -> str:
    text = re.sub(r"\\\[|\\\]", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[*_#`]+", "", text)


def _doc_sentences(paragraphs: list[str]) -> list[tuple[str, str | None]]:
    """(sentence, speaker) pairs for a document's paragraphs."""
    out: list[tuple[str, str | None]] = []
    speaker = None
    for para in paragraphs:
        para = " ".join(para.split())
        if re.match(r"^Q\s", para):
            speaker, para = "Q", ""
        m = SPEAKER.match(para)
        if m:
            speaker = m.group(1)
            para = para[m.end():]
        if speaker in ("Q", "Question"):
            continue  # reporters' questions: not government text, licence unclear
        for s in split_sentences(para):
            out.append((s.text, speaker))
    return out


def kremlin_docs(path: Path):
    for line in path.open():
        d = json.loads(line)
        if not d.get("paragraphs") or not d.get("date"):
            continue
        yield {
            "source": "kremlin", "doc_id": f"kremlin:{d['id']}", "date": d["date"], "title": d["title"],
            "country_hint": _country_in(d["title"] or "") or "Russia", "paragraphs": d["paragraphs"],
        }


def whitehouse_docs(path: Path):
    for line in path.open():
        d = json.loads(line)
        paras = [p for p in re.split(r"\n\s*\n", _clean_md(d["text"])) if p.strip()]
        yield {
            "source": "whitehouse", "doc_id": f"whitehouse:{d['path']}", "date": d["date"], "title": d["title"],
            "country_hint": _country_in(d["title"] or "") or "United States", "paragraphs": paras,
        }


def _unwrap(lines: list[str]) -> list[str]:
    """Rejoin hard-wrapped lines: a line not ending a sentence continues on the next."""
    paras: list[str] = []
    buf: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        buf.append(line)
        if re.search(r"[.!?:;\"”’)]$", line):
            paras.append(" ".join(buf))
            buf = []
    if buf:
        paras.append(" ".join(buf))
    return paras


def un_docs(folder: Path):
    for f in sorted(folder.glob("[A-Z][A-Z][A-Z]_*_*.txt")):
        iso, session, year = f.stem.split("_")
        paras = _unwrap(f.read_text(encoding="utf-8", errors="replace").splitlines())
        yield {
            "source": "un_general_debates", "doc_id": f"ungd:{f.stem}", "date": f"{year}-09-01",
            "title": f"UN General Debate {year}: {UN_COUNTRY[iso]}", "country_hint": UN_COUNTRY[iso],
            "paragraphs": paras,
        }


def classify_cue(text: str) -> str | None:
    """Cue group of a sentence, or None when it carries no axis cue."""
    actor, west = bool(ACTOR.search(text)), bool(WEST.search(text))
    engage, align = bool(ENGAGE.search(text)), bool(ALIGN.search(text))
    if actor and west and (engage or align):
        return "cue:russia+west"
    if actor and engage:
        return "cue:russia+engage"
    if actor and align:
        return "cue:russia+align"
    if west and align:
        return "cue:west+align"
    if actor:
        return "cue:russia"
    return None


def mine_source(
    docs, quotas: dict[str, int], rng: random.Random, background_share: float, max_per_doc: int = 4
) -> list[dict]:
    """Sample rows per cue group (up to quotas), then background rows from the same documents."""
    pools: dict[str, list[dict]] = defaultdict(list)
    background: dict[str, list[dict]] = defaultdict(list)
    for doc in docs:
        sents = _doc_sentences(doc["paragraphs"])
        for i, (text, speaker) in enumerate(sents):
            n = len(text.split())
            if not (MIN_WORDS <= n <= MAX_WORDS) or text.endswith("?"):
                continue
            row = {
                "text": text, "source": doc["source"], "doc_id": doc["doc_id"], "date": doc["date"],
                "title": doc["title"], "country_hint": doc["country_hint"], "speaker": speaker,
                "context_prev": sents[i - 1][0] if i else "",
                "context_next": sents[i + 1][0] if i + 1 < len(sents) else "",
            }
            cue = classify_cue(text)
            (pools[cue] if cue else background[doc["doc_id"]]).append(row)
    chosen: list[dict] = []
    for cue, quota in quotas.items():
        pool = pools.get(cue, [])
        rng.shuffle(pool)
        per_doc: Counter = Counter()
        taken = 0
        for row in pool:
            if taken >= quota:
                break
            if per_doc[row["doc_id"]] >= max_per_doc:  # spread over many documents
                continue
            per_doc[row["doc_id"]] += 1
            taken += 1
            chosen.append({**row, "selection": cue})
    docs_used = sorted({r["doc_id"] for r in chosen})
    n_bg = int(len(chosen) * background_share)
    rng.shuffle(docs_used)
    for doc_id in docs_used:
        if n_bg <= 0:
            break
        if background[doc_id]:
            chosen.append({**rng.choice(background[doc_id]), "selection": "background"})
            n_bg -= 1
    return chosen


def newsmtsc_rows(folder: Path) -> list[dict]:
    """Every NewsMTSC train/dev sentence that touches the axis."""
    axis = re.compile(r"\b(Russia\w*|Moscow|Putin|NATO|sanction\w*|Ukrain\w*|Crimea\w*|Kremlin)\b", re.I)
    rows, seen = [], set()
    for fname, field in (("train.jsonl", "sentence_normalized"), ("hf_dev.jsonl", "sentence")):
        for line in (folder / fname).open():
            d = json.loads(line)
            text = " ".join(d[field].split())
            if text in seen or not axis.search(text):
                continue
            seen.add(text)
            gid = d.get("primary_gid") or d["id"]
            rows.append({
                "text": text, "source": "newsmtsc", "doc_id": "newsmtsc:" + "_".join(gid.split("_")[:3]),
                "date": "", "title": "", "country_hint": "United States", "speaker": None,
                "context_prev": "", "context_next": "", "selection": f"newsmtsc_axis:{fname}",
            })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data/annotation/candidates.jsonl"))
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows: list[dict] = []
    rows += mine_source(
        kremlin_docs(args.shared / "kremlin_en_news/kremlin_en_president_news.jsonl"),
        {"cue:russia+west": 650, "cue:russia+engage": 300, "cue:west+align": 250, "cue:russia+align": 150}, rng, 0.2,
    )
    rows += mine_source(
        whitehouse_docs(args.shared / "whitehouse_briefings_russia/wh_docs_russia.jsonl"),
        {"cue:russia+engage": 450, "cue:russia+west": 400, "cue:russia+align": 300, "cue:west+align": 100}, rng, 0.2,
    )
    rows += mine_source(
        un_docs(args.shared / "un_general_debates"),
        {"cue:russia+west": 300, "cue:russia+engage": 350, "cue:russia+align": 300, "cue:west+align": 150}, rng, 0.15, 8,
    )
    rows += newsmtsc_rows(args.shared / "newsmtsc")
    seen, out = set(), []
    for r in rows:
        key = r["text"].lower()
        if key in seen:
            continue
        seen.add(key)
        out.append({"id": _sid(r["source"], r["doc_id"], r["text"]), **r})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} candidates to {args.out}")
    for (src, sel), n in sorted(Counter((r["source"], r["selection"]) for r in out).items()):
        print(f"  {src:20s} {sel:32s} {n}")


if __name__ == "__main__":
    main()
