"""Render data/corpus/README.md (the data card) from the corpus files and annotation_stats.json.

Counts come from the data so the card stays true after a rebuild; prose sections are below.

    python data/tools/data_card.py
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from stancekit.training.corpus import SENTIMENT_LABELS, STANCE_LABELS, validate_corpus

CORPUS = Path("data/corpus")
GUIDELINE = Path("docs/ANNOTATION.md")


def table(rows: list[dict], key: str, by: str, labels: tuple[str, ...]) -> list[str]:
    """Markdown table of `key` label counts per value of `by`."""
    mix: dict[str, Counter] = {}
    for r in rows:
        mix.setdefault(str(r.get(by)), Counter())[r.get(key) or "(none)"] += 1
    cols = list(labels) + (["(none)"] if any(c.get("(none)") for c in mix.values()) else [])
    out = [f"| {by} | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    for value, c in sorted(mix.items()):
        out.append(f"| {value} | " + " | ".join(str(c.get(x, 0)) for x in cols) + f" | {sum(c.values())} |")
    return out


def confusion(head: dict) -> list[str]:
    labels = head["labels"]
    out = ["| pass 1 \\ pass 2 | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for lab, row in zip(labels, head["confusion_pass1_rows_pass2_cols"]):
        out.append(f"| {lab} | " + " | ".join(map(str, row)) + " |")
    return out


def main() -> None:
    report = validate_corpus(CORPUS)
    if report.problems:
        raise SystemExit("corpus has problems; run `stancekit data validate data/corpus`")
    rows = report.all_rows()
    stats = json.loads((CORPUS / "annotation_stats.json").read_text())
    agree = stats["agreement"]
    both = [r for r in rows if r.get("stance")]
    countries = Counter(r["country"] for r in both if r.get("country") not in (None, "", "none"))
    selection = Counter(r["selection"].split(":")[0] + (":" + r["selection"].split(":")[1] if r["selection"].startswith(("cue", "model")) else "") for r in rows)
    annotation = Counter(r["annotation"] for r in rows)
    guideline_sha = hashlib.sha256(GUIDELINE.read_bytes()).hexdigest()[:16]
    authored = [r for r in rows if r["origin"] == "authored"]
    a = stats["authored"]
    text = TEMPLATE.format(
        n=len(rows), n_both=len(both), n_sentiment_only=len(rows) - len(both),
        n_authored=len(authored), authored_share=len(authored) / len(rows),
        n_countries=len(countries), top_countries=", ".join(f"{k} {v}" for k, v in countries.most_common(25)),
        guideline_sha=guideline_sha,
        split_stance="\n".join(table(rows, "stance", "split", STANCE_LABELS)),
        split_sentiment="\n".join(table(rows, "sentiment", "split", SENTIMENT_LABELS)),
        source_stance="\n".join(table(rows, "stance", "source", STANCE_LABELS)),
        source_sentiment="\n".join(table(rows, "sentiment", "source", SENTIMENT_LABELS)),
        origin_stance="\n".join(table(rows, "stance", "origin", STANCE_LABELS)),
        selection="\n".join(f"| `{k}` | {v} |" for k, v in selection.most_common()),
        annotation="\n".join(f"| `{k}` | {v} |" for k, v in annotation.most_common()),
        n_double=agree["n_double"], n_compared=agree["n_compared"],
        kappa_stance=agree["heads"]["stance"]["cohen_kappa"], kappa_sentiment=agree["heads"]["sentiment"]["cohen_kappa"],
        raw_stance=agree["heads"]["stance"]["raw_agreement"], raw_sentiment=agree["heads"]["sentiment"]["raw_agreement"],
        conf_stance="\n".join(confusion(agree["heads"]["stance"])),
        conf_sentiment="\n".join(confusion(agree["heads"]["sentiment"])),
        n_adjudicated=stats["adjudicated"],
        skipped=", ".join(f"{k} {v}" for k, v in stats["skipped_non_content_by_source"].items()),
        a_written=a.get("written", 0), a_kept=a.get("kept", 0), a_dropped=a.get("checker_disagreed_dropped", 0),
        a_leaked=a.get("paraphrase_of_eval_dropped", 0),
    )
    (CORPUS / "README.md").write_text(text)
    print(f"wrote {CORPUS / 'README.md'}")


TEMPLATE = """# stancekit corpus v1.1 — data card

Sentence-level **stance** (`pro_us_alignment` / `pro_russia_engagement` / `neutral`) and
**sentiment** (`negative` / `neutral` / `positive`) labels for {n} sentences, built for
stancekit's two-head classifier. Labels follow the guideline in
[`docs/ANNOTATION.md`](../../docs/ANNOTATION.md) (v1, sha256 `{guideline_sha}…`, identical to
`../shared/ANNOTATION.md`).

- {n_both} sentences carry both a stance and a sentiment label; {n_sentiment_only} NewsMTSC sentences carry
  sentiment only (stance empty: the sentiment head trains on them, the stance head ignores them).
- {n_authored} sentences ({authored_share:.1%}) are `origin: authored` (written for the project); they are in
  `train` only, never in `dev` or `test`.
- {n_countries} countries appear as the country in focus.
- Files: `train.jsonl`, `dev.jsonl`, `test.jsonl` (one JSON object per line) and
  `annotation_stats.json` (agreement figures). Everything is rebuilt from `data/annotation/` by
  `python data/tools/build_corpus.py`; check it with `stancekit data validate data/corpus`.

## Row schema

| field | meaning |
|---|---|
| `id` | stable id (`kre-`, `whi-`, `un_-`, `new-`, `nms-`, `auth-` prefixes by source) |
| `text` | the sentence |
| `stance`, `sentiment` | final labels (`stance` null for sentiment-only rows) |
| `source` | `kremlin`, `whitehouse`, `un_general_debates`, `newsmtsc`, `authored` |
| `doc_id` | document of origin (Kremlin page id, White House file path, UN speech, NewsMTSC article); splits never share one |
| `date` | document date (UN speeches: the session year) |
| `country` | state in focus whose alignment the sentence bears on (annotator's choice, seeded by a hint from the document) |
| `origin` | `real` (text from a source) or `authored` |
| `selection` | how the sentence was chosen (below) |
| `annotation` | `single`, `double_agree`, `adjudicated`, `authored_checked` or `newsmtsc_targets` |
| `split` | `train` / `dev` / `test` |

## Sources and licences

| source | text | licence and attribution |
|---|---|---|
| `kremlin` | en.kremlin.ru "President > News" pages, 1999–2020 (crawl mirrored in github.com/iandennismiller/valdai-transcripts @ d365d81) | **CC BY 4.0 — attribute kremlin.ru.** Sentences are quoted verbatim; speaker prefixes ("Vladimir Putin:") are stripped from the text and kept for annotators. |
| `whitehouse` | White House briefings, remarks and statements mentioning Russia, 2021–2026 (github.com/brian14708/wh-briefings @ 737ca03) | US federal government works, public domain in the US; reporters' questions were excluded (their status is unclear). |
| `un_general_debates` | UN General Debate statements 1991–2024 of 14 states (UN General Debate Corpus, Baturo, Dasandi & Mikhaylov; via github.com/SarahFranzen/Emotions_in_the_United_Nations_General_Debates @ 3b277c4) | CC0 (Harvard Dataverse release); cite the UNGDC. |
| `newsmtsc` | NewsMTSC train/dev sentences from US political news (Hamborg & Donnay, EACL 2021; github.com/fhamborg/NewsMTSC @ b9d9b79) | MIT-style licence of the repository; cite Hamborg & Donnay 2021. The dataset's own test split was not used. |
| `authored` | sentences written for stancekit in wire-service style | stancekit's own; see "Authored sentences". |

## How sentences were chosen (`selection`)

Random sentences from these sources are ~85 % `neutral`, so candidates were mined:

1. Every document was split with stancekit's own splitter (`stancekit.serve.sentences`, pysbd); 7–60 words,
   no questions. Cue groups (`data/tools/mine_candidates.py`): a Russia actor (Russia, Moscow, Putin, Kremlin…)
   with Western actors (US, NATO, EU, allies…) and engagement or alignment cues (`cue:russia+west`,
   `cue:russia+engage`, `cue:russia+align`, `cue:west+align`), at most 4 per document (8 for UN speeches),
   plus `background` sentences drawn from the same documents (15–20 %) so `neutral` stays realistic.
2. Every NewsMTSC train/dev sentence touching the axis (Russia, Moscow, Putin, NATO, sanctions, Ukraine,
   Crimea, Kremlin): `newsmtsc_axis:*`.
3. Round 2, after a first model existed (`data/tools/mine_round2.py`): unlabelled axis sentences scored by
   it; the most probable minority label per source (`model:p_pro_us_alignment` in Kremlin and UN text,
   `model:p_pro_russia_engagement` in White House and UN text) and the highest-entropy sentences
   (`model:uncertainty`), plus Kremlin sentences voiced by foreign leaders or reporting Western positions
   (`cue:kremlin_*`, `data/tools/mine_kremlin_voices.py`).
4. NewsMTSC sentences whose targets all share one polarity, off the axis, 999 per polarity (seeded):
   `newsmtsc_sentiment_all_targets_agree`. Target polarity is a proxy for the sentence's tone.

| selection | rows |
|---|---|
{selection}

## Annotation

- **Annotators.** Labels were assigned by stancekit's annotation sessions — AI assistant sessions, each given
  the guideline (`docs/ANNOTATION.md`), a written brief (`data/annotation/prompts/`) and a batch of ~300–435
  sentences with their document title, speaker and neighbouring sentences; each read and labelled every
  sentence (no keyword rules). The project lead spot-checked every batch. They are not human experts: treat
  the labels as a careful, consistent reading of the guideline, not as ground truth.
- **Pass 1** covered every candidate (10 batches, then 3 round-2 batches). Non-content lines (reporters'
  questions, headlines, captions, fragments) were marked `skip` and dropped: {skipped}.
- **Pass 2 (blind).** {n_double} pass-1 sentences, stratified by source, were labelled again by two other
  sessions that never saw the first labels. On the {n_compared} sentences neither pass skipped:
  **Cohen's kappa — stance {kappa_stance:.3f} (raw agreement {raw_stance:.1%}), sentiment
  {kappa_sentiment:.3f} (raw {raw_sentiment:.1%}).** Annotators sharing one model family agree more than
  independent humans would; read these as an upper bound.

Stance, pass 1 (rows) against pass 2 (columns):

{conf_stance}

Sentiment:

{conf_sentiment}

- **Adjudication.** {n_adjudicated} disagreements were settled by an adjudicator session (7 of them by the lead)
  with the guideline and recorded with a reason (`data/annotation/adjudication_*.jsonl`).
- **An incident, fixed.** Pass 1 of batch 02 came back with labels out of step with its ids (a scratch-file
  collision between parallel sessions); the blind pass exposed it (45 % stance agreement against 95 % for the
  other batches). The batch was discarded (`data/annotation/labels_rejected/`) and re-annotated from scratch
  (100 % stance agreement with pass 2 afterwards); adjudications made against the bad labels were redone.

| annotation | rows |
|---|---|
{annotation}

### Where the guideline was hard to apply

1. **Readouts of talks.** "The leaders discussed X" (neutral) versus cooperation, agreements or partnership
   named as the content (`pro_russia_engagement`). The largest source of disagreement (about a third).
2. **"Criticism of the US line."** Russian or Belarusian criticism of NATO expansion, sanctions or treaty
   withdrawals was labelled `pro_russia_engagement`; criticism of the US on topics unrelated to Russia
   (Cuba, Iran, North Korea, Syria strikes without a bearing on dealing with Russia) `neutral`.
3. **Condemnation versus alignment.** A bare condemnation of Russia is `neutral`; a joint or allied statement
   tying it to sanctions, support for Ukraine or unity is `pro_us_alignment`.
4. **US talks with Moscow in US text.** Arms control (New START), ceasefire talks and "a stable and
   predictable relationship" advocated by the White House are `pro_russia_engagement`; narrow prisoner
   negotiations and conditional offers withdrawn in the next sentence are `neutral`.
5. **Alliances without Russia.** Affirming an alliance with the US (Japan, Korea, the Quad) was labelled
   `pro_us_alignment` by the guideline's "alliance solidarity", though Moscow is not mentioned; trade-only
   partnerships are `neutral`.
6. **Sentiment of factual conflict sentences.** Sanctions fact-sheet items and logistics framed by "Putin's
   war" are `neutral` unless the wording itself is charged ("crushing", "pariah").

## Splits

Train/dev/test (80/10/10) are grouped by document — and near-duplicates (character n-gram cosine ≥ 0.85,
e.g. the same line in two briefings) are grouped with them — and stratified by stance
(`sklearn.model_selection.StratifiedGroupKFold`, seed 13). Authored rows are train-only.

Stance by split:

{split_stance}

Sentiment by split:

{split_sentiment}

## Label mix per source

Stance:

{source_stance}

Sentiment:

{source_sentiment}

Stance by origin:

{origin_stance}

Every source contributes all three stance labels, but not evenly: Kremlin text almost never argues for
siding with Washington (2 `pro_us_alignment` rows despite targeted mining of foreign leaders' remarks in
Kremlin transcripts), and White House text rarely argues for engaging Moscow. A model can therefore still
learn part of "Kremlin style means not pro-US"; the leave-one-source-out table in the model card measures how
much stance survives a change of source.

## Authored sentences

{a_written} sentences were written for the project in wire-service style by four writing sessions (briefs in
`data/annotation/prompts/prompt_author*.md`) covering the countries the sources under-represent (India and Russian oil, Turkey and the S-400, Hungary and gas, Germany
and Nord Stream, Serbia, Vietnam, the Gulf states, Central Asia, the Caucasus, Latin America, …), one third per
stance label with sentiment varied inside each stance, many neutral sentences that mention Moscow or NATO and
contrastive pairs on one topic with opposite stance. Each was then labelled blind by a second session; only
the {a_kept} where both agreed on both labels were kept ({a_dropped} dropped for disagreement, and
{a_leaked} more because they retell an event of a sentence in `data/eval/`: character n-gram cosine 0.4 or more). They read like news but are
**not reporting**: events are real, but many quotes and attributions are invented, and facts were not checked.
They must never be cited as statements of the people named. `stancekit train --set
data.exclude_origins=[authored]` trains without them; the model card reports what they add on dev.

## Known biases and limits

- Official registers dominate (Kremlin, White House, UN): real news is only NewsMTSC (US outlets, 2010s).
  Expect lower scores on news from other outlets and countries.
- Time: Kremlin 1999–2020, White House 2021–2026, UN 1991–2024: stance vocabulary shifts (the 2022 war).
- `country` is the annotator's reading, seeded by a hint from the document; Russia and the United States
  dominate because their own texts are most of the corpus. Top countries: {top_countries}.
- Sentiment-only NewsMTSC rows inherit the target-level polarity of the original dataset.
- Labels come from AI annotation sessions with one guideline; systematic misreadings shared by all sessions
  would not show up in the agreement figures.
"""


if __name__ == "__main__":
    main()
