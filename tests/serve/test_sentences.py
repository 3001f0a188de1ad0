"""Sentence splitting and boilerplate dropping."""

from __future__ import annotations

import pytest

from stancekit.serve.sentences import boilerplate_rule, split_article


@pytest.mark.parametrize(
    "text, n",
    [
        ("The U.S. and Japan disagree on Russia. Talks resume Monday.", 2),
        ("Mr. Abe met Mr. Putin in Sochi. They spoke for hours.", 2),
        ("The summit is set for Jan. 5 in Tokyo. Officials confirmed it.", 2),
        ("J. R. Smith of the State Department said so. He left.", 2),
        ("“Japan is not going to side with the U.S.,” Ms. Goto said. “There are shades of gray.”", 2),
        ("He arrived at 5 p.m. on Friday and left on Saturday.", 1),
    ],
)
def test_split_article_does_not_break_at_abbreviations(text, n):
    result = split_article(text)
    assert len(result.sentences) == n, [s.text for s in result.sentences]


def test_split_article_offsets_point_into_the_text():
    text = "First line here.\n\n  Second paragraph, with two. Sentences here.\n"
    result = split_article(text)
    assert [s.text for s in result.sentences] == ["First line here.", "Second paragraph, with two.", "Sentences here."]
    for s in result.sentences:
        assert text[s.start:s.end] == s.text


@pytest.mark.parametrize(
    "line, rule",
    [
        ("Sign up for Daily Newsletters", "newsletter"),
        ("Manage Newsletters", "newsletter"),
        ("Copyright © 2021 The Washington Times, LLC. Click here for reprint permission.", "copyright"),
        ("Click to Read More and View Comments", "click_prompt"),
        ("Please read our comment policy before commenting.", "comment_policy"),
        ("- The Washington Times - Wednesday, May 4, 2016", "byline"),
        ("Japan and Russia signed a gas deal on Monday.", None),
    ],
)
def test_boilerplate_rule_names_non_content_lines(line, rule):
    assert boilerplate_rule(line) == rule


def test_split_article_counts_dropped_lines_and_keeps_long_paragraphs():
    long_para = "Readers who subscribe to newsletters " + "and read about sanctions on Russia " * 10 + "were surveyed."
    text = f"Sign up for Daily Newsletters\n{long_para}\nClick to Hide\n"
    result = split_article(text)
    assert result.n_dropped == 2
    assert len(result.sentences) == 1


def test_split_article_sample_report_drops_boilerplate(sample_article):
    result = split_article(sample_article)
    assert result.n_dropped == 7
    assert len(result.sentences) == 24
    assert all("Newsletter" not in s.text for s in result.sentences)


def test_single_sentence_paragraph_skips_the_splitter_with_the_same_result():
    from stancekit.serve.sentences import _segmenter, split_sentences

    line = "  Officials in Ankara said the S-400 issue was closed, and talks with Washington would continue  "
    [s] = split_sentences(line, offset=100)
    assert s.text == line.strip() == [x.sent.strip() for x in _segmenter().segment(line)][0]
    assert (s.start, s.end) == (102, 102 + len(line.strip()))


@pytest.mark.parametrize(
    "paragraph, expected",
    [
        # pysbd returns the closing quote as a sentence of its own, or as the start of the next one.
        ('This skill puts him above a normal person." And more.', ['This skill puts him above a normal person."', "And more."]),
        ('Hagel\'s record remains untarnished. "', ['Hagel\'s record remains untarnished. "']),
    ],
)
def test_detached_closing_quote_goes_back_to_its_sentence(paragraph, expected):
    text = "Intro line.\n" + paragraph + "\n"
    sentences = split_article(text).sentences[1:]
    assert [s.text for s in sentences] == expected
    assert all(text[s.start:s.end] == s.text for s in sentences)


def test_splitting_again_recompiles_no_regex(monkeypatch):
    # Over the dev and test sets in news-shaped paragraphs pysbd uses more string patterns than re's
    # default 512-entry cache holds, so a second pass recompiled some (sentences._RE_CACHE_FOR_PYSBD).
    import json
    import re

    from conftest import REPO

    rows = [json.loads(line)["text"] for split in ("dev", "test")
            for line in (REPO / "data" / "corpus" / f"{split}.jsonl").open(encoding="utf-8")]
    paragraphs = [" ".join(rows[i:i + 3]) for i in range(0, len(rows), 3)]
    articles = ["\n\n".join(paragraphs[i:i + 7]) for i in range(0, len(paragraphs), 7)]
    for a in articles:
        split_article(a)
    compiled = []
    real = re._compiler.compile
    monkeypatch.setattr(re._compiler, "compile", lambda *a, **k: compiled.append(a[0]) or real(*a, **k))
    for a in articles:
        split_article(a)
    assert compiled == []


@pytest.mark.parametrize("paragraph", [
    'Dr. Smith met Mr. Jones in Washington. U.S. officials agreed. "It went well," he said.',
    "Yes. Yes. He said yes. Yes.",
    "Talks ended.  Twice.  Twice. Then the U.N. voted 13-2 in favour.",
])
def test_sentence_offsets_match_pysbds_own_char_spans(paragraph):
    from stancekit.serve.sentences import _pysbd_sentences, _segmenter

    ours = [(at, sent.strip()) for at, sent in _pysbd_sentences(paragraph)]
    theirs = [(span.start, span.sent.strip()) for span in _segmenter().segment(paragraph)]
    assert ours == theirs
    assert all(paragraph[at:at + len(sent)] == sent for at, sent in ours)
