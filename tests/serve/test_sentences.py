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
