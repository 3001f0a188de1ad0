"""Corpus checks behind `stancekit data validate`: schema, labels, duplicates, leakage, label mix."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stancekit.errors import DataError

SPLITS = ("train", "dev", "test")
REQUIRED = ("id", "text", "stance", "sentiment", "source", "doc_id", "date", "country", "origin", "split")
ORIGINS = ("real", "authored")
STANCE_LABELS = ("pro_us_alignment", "pro_russia_engagement", "neutral")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
MAX_AUTHORED_SHARE = 0.35
NEAR_DUP_COSINE = 0.9


@dataclass
class CorpusReport:
    """Counts and problems found in a corpus directory."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def all_rows(self) -> list[dict[str, Any]]:
        """Rows of every split."""
        return [r for split in SPLITS for r in self.rows.get(split, [])]

    def mix(self, key: str, by: str) -> dict[str, Counter]:
        """Counter of `key` values per value of `by` (rows whose `key` is empty count as '(none)')."""
        out: dict[str, Counter] = defaultdict(Counter)
        for r in self.all_rows():
            out[str(r.get(by))][r.get(key) or "(none)"] += 1
        return dict(sorted(out.items()))

    def render(self) -> str:
        """Plain-text report: totals, label mix per split and per source, countries, problems."""
        rows = self.all_rows()
        both = [r for r in rows if r.get("stance") and r.get("sentiment")]
        lines = [
            f"rows: {len(rows)} ({len(both)} with both stance and sentiment, "
            f"{sum(1 for r in rows if not r.get('stance'))} sentiment-only)",
        ]
        for key in ("stance", "sentiment"):
            labels = STANCE_LABELS if key == "stance" else SENTIMENT_LABELS
            for by in ("split", "source", "origin"):
                lines.append(f"\n{key} by {by}:")
                lines.append(f"  {'':22s}" + "".join(f"{lab[:21]:>22s}" for lab in labels) + f"{'(none)':>9s}{'total':>8s}")
                for value, c in self.mix(key, by).items():
                    lines.append(
                        f"  {value[:22]:22s}" + "".join(f"{c.get(lab, 0):22d}" for lab in labels)
                        + f"{c.get('(none)', 0):9d}{sum(c.values()):8d}"
                    )
        countries = Counter(r.get("country") for r in both if r.get("country") not in (None, "", "none"))
        lines.append(f"\ncountries in focus: {len(countries)}: " + ", ".join(f"{k} {v}" for k, v in countries.most_common()))
        authored = sum(1 for r in rows if r.get("origin") == "authored")
        lines.append(f"authored rows: {authored} ({authored / max(len(rows), 1):.1%} of the corpus)")
        if self.problems:
            lines.append(f"\n{len(self.problems)} problem(s):")
            lines += [f"  - {p}" for p in self.problems[:50]]
            if len(self.problems) > 50:
                lines.append(f"  ... and {len(self.problems) - 50} more")
        else:
            lines.append("\nOK: no problems found")
        return "\n".join(lines)


def normalise(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced text for duplicate detection."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _read_split(path: Path, report: CorpusReport, split: str) -> None:
    rows = []
    with path.open("rb") as f:
        for i, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            where = f"{path.name} line {i}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                report.problems.append(f"{where}: not a UTF-8 JSON object ({err})")
                continue
            row["_where"] = where
            rows.append(row)
    report.rows[split] = rows


def _check_rows(report: CorpusReport) -> None:
    seen_ids: dict[str, str] = {}
    for split in SPLITS:
        for r in report.rows.get(split, []):
            where = r["_where"]
            missing = [k for k in REQUIRED if k not in r]
            if missing:
                report.problems.append(f"{where}: missing field(s) {missing}")
            if not isinstance(r.get("text"), str) or not r.get("text", "").strip():
                report.problems.append(f"{where}: empty or non-string text")
            if r.get("stance") not in (None, "", *STANCE_LABELS):
                report.problems.append(f"{where}: stance {r.get('stance')!r} is not one of {', '.join(STANCE_LABELS)}")
            if r.get("sentiment") not in SENTIMENT_LABELS:
                report.problems.append(
                    f"{where}: sentiment {r.get('sentiment')!r} is not one of {', '.join(SENTIMENT_LABELS)}"
                )
            if r.get("origin") not in ORIGINS:
                report.problems.append(f"{where}: origin {r.get('origin')!r} is not one of {', '.join(ORIGINS)}")
            if r.get("split") != split:
                report.problems.append(f"{where}: split field {r.get('split')!r} but the row is in {split}.jsonl")
            if split in ("dev", "test") and r.get("origin") == "authored":
                report.problems.append(f"{where}: authored rows may only be in train (found in {split})")
            rid = r.get("id")
            if rid in seen_ids:
                report.problems.append(f"{where}: duplicate id {rid!r} (also {seen_ids[rid]})")
            seen_ids[str(rid)] = where


def _check_duplicates(report: CorpusReport) -> None:
    by_text: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split in SPLITS:
        for r in report.rows.get(split, []):
            if isinstance(r.get("text"), str):
                by_text[normalise(r["text"])].append((split, r["_where"]))
    for places in by_text.values():
        if len(places) > 1:
            report.problems.append("duplicate text: " + ", ".join(w for _, w in places))


def _check_near_duplicates(report: CorpusReport) -> None:
    """Character n-gram TF-IDF cosine >= NEAR_DUP_COSINE between a dev/test row and any other split's row."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rows = [r for r in report.all_rows() if isinstance(r.get("text"), str)]
    if len(rows) < 2:
        return
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=1).fit([r["text"] for r in rows])
    for held in ("dev", "test"):
        held_rows = [r for r in rows if r.get("split") == held]
        other = [r for r in rows if r.get("split") != held and not (held == "dev" and r.get("split") == "test")]
        if not held_rows or not other:
            continue
        sims = vec.transform([r["text"] for r in held_rows]) @ vec.transform([r["text"] for r in other]).T
        sims = sims.tocoo()
        for i, j, v in zip(sims.row, sims.col, sims.data):
            if v >= NEAR_DUP_COSINE and normalise(held_rows[i]["text"]) != normalise(other[j]["text"]):
                report.problems.append(
                    f"near-duplicate across splits (cosine {v:.2f}): {held_rows[i]['_where']} ~ {other[j]['_where']}"
                )


def _check_leakage_and_balance(report: CorpusReport) -> None:
    doc_splits: dict[str, set[str]] = defaultdict(set)
    for r in report.all_rows():
        doc_splits[str(r.get("doc_id"))].add(r.get("split"))
    for doc, splits in sorted(doc_splits.items()):
        if len(splits) > 1:
            report.problems.append(f"document leakage: doc_id {doc!r} appears in splits {sorted(splits)}")
    for source, c in report.mix("stance", "source").items():
        missing = [lab for lab in STANCE_LABELS if c.get(lab, 0) == 0]
        if missing and sum(c.get(lab, 0) for lab in STANCE_LABELS) > 0:
            report.problems.append(f"source {source!r} lacks stance label(s) {missing}: every source needs all three")
    rows = report.all_rows()
    authored = sum(1 for r in rows if r.get("origin") == "authored")
    if rows and authored / len(rows) >= MAX_AUTHORED_SHARE:
        report.problems.append(f"authored rows are {authored / len(rows):.1%} of the corpus (limit {MAX_AUTHORED_SHARE:.0%})")


def validate_corpus(directory: str | Path) -> CorpusReport:
    """Run every corpus check on train/dev/test.jsonl in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: corpus directory not found")
    report = CorpusReport()
    for split in SPLITS:
        path = directory / f"{split}.jsonl"
        if not path.is_file():
            report.problems.append(f"{path}: missing split file")
            report.rows[split] = []
            continue
        _read_split(path, report, split)
    _check_rows(report)
    _check_duplicates(report)
    _check_near_duplicates(report)
    _check_leakage_and_balance(report)
    return report


def stratified_group_split(
    strata: list[str], groups: list[str], fractions: tuple[float, float, float], seed: int
) -> np.ndarray:
    """Assign 'train'/'dev'/'test' per row: whole groups, stratified by `strata` (StratifiedGroupKFold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_folds = round(1 / min(f for f in fractions if f > 0))
    folds = np.empty(len(strata), dtype=np.int64)
    sgkf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, idx) in enumerate(sgkf.split(np.zeros(len(strata)), strata, groups)):
        folds[idx] = k
    n_dev = round(fractions[1] * n_folds)
    n_test = round(fractions[2] * n_folds)
    out = np.full(len(strata), "train", dtype=object)
    out[folds < n_test] = "test"
    out[(folds >= n_test) & (folds < n_test + n_dev)] = "dev"
    return out
