"""The highlighted article view: every sentence shaded, dropped lines struck through, summary on top."""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from stancekit.cli import app
from stancekit.errors import DataError
from stancekit.serve.explain import article_segments, explain_article, locate_dropped, read_article
from stancekit.serve.profile import build_profile
from stancekit.serve.report_html import OKABE_ITO, label_colors
from stancekit.serve.schemas import SentencePrediction
from stancekit.serve.sentences import Sentence
from stancekit.serve.service import StanceService

HEADS = {"stance": ["pro_us_alignment", "pro_russia_engagement", "neutral"], "sentiment": ["negative", "neutral", "positive"]}
SETTINGS = {"lean_head": "stance", "lean_positive": "pro_us_alignment", "lean_negative": "pro_russia_engagement",
            "evidence_per_label": 2, "bootstrap_samples": 100, "seed": 0}


class _ArticleText(HTMLParser):
    """Text inside <div class="article">, with the titles of its sentence spans."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.text, self.titles, self.dropped = 0, [], [], []
        self._in_del = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.depth or (tag == "div" and a.get("class") == "article"):
            self.depth += 1
            if tag == "span":
                self.titles.append(a.get("title", ""))
            self._in_del = tag == "del"

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
            self._in_del = False

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)
            if self._in_del:
                self.dropped.append(data)


def _parse(page: str) -> _ArticleText:
    parser = _ArticleText()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def service(tiny_artifact) -> StanceService:
    return StanceService.from_artifact(tiny_artifact)


@pytest.fixture(scope="module")
def sample_view(tiny_artifact, service, sample_article, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain") / "article.html"
    profile = explain_article(tiny_artifact, sample_article, out, article_id="sochi", service=service)
    return profile, out.read_text()


def test_every_sentence_is_a_span_and_every_dropped_line_is_struck_through(sample_view):
    profile, page = sample_view
    parsed = _parse(page)
    assert len(parsed.titles) == profile.n_sentences == 24
    assert parsed.dropped == profile.dropped and len(parsed.dropped) == 7
    assert "The Washington Times" in parsed.dropped[0]


def test_the_article_text_is_reproduced_exactly(sample_view, sample_article):
    assert "".join(_parse(sample_view[1]).text) == sample_article


def test_tooltips_give_every_heads_probabilities(sample_view):
    profile, page = sample_view
    titles = _parse(page).titles
    for s, title in zip(profile.sentences, titles):
        for h, hp in s.heads.items():
            assert f"{h}: {hp.label} ({hp.confidence:.2f}" in title
            assert all(f"{lab} {p:.2f}" in title for lab, p in hp.probabilities.items())


def test_summary_shows_lean_with_interval_shares_and_speakers(sample_view):
    profile, page = sample_view
    lean = profile.lean
    assert f'data-score="{lean.score:.4f}"' in page
    assert f"{lean.ci_low:+.2f}".replace("-", "−") in page and f"{lean.ci_high:+.2f}".replace("-", "−") in page
    for summary in profile.heads.values():
        for lab, s in summary.labels.items():
            assert f'data-label="{lab}" data-share="{s.share:.4f}"' in page
    assert profile.speakers and all(htmllib.escape(sp.speaker) in page for sp in profile.speakers)


def test_page_is_self_contained(sample_view):
    page = sample_view[1]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<style>" in page


def test_markup_in_the_article_is_escaped(tiny_artifact, service, tmp_path):
    text = "<script>alert(1)</script> Japan signed a gas deal with Russia.\n"
    explain_article(tiny_artifact, text, tmp_path / "a.html", service=service)
    page = (tmp_path / "a.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "".join(_parse(page).text) == text


def test_empty_article_still_renders(tiny_artifact, service, tmp_path):
    profile = explain_article(tiny_artifact, "", tmp_path / "empty.html", service=service)
    assert profile.n_sentences == 0
    assert _parse((tmp_path / "empty.html").read_text()).titles == []


def _sentences(texts: list[str]) -> tuple[str, list[Sentence]]:
    out, pos = [], 0
    for t in texts:
        out.append(Sentence(t, pos, pos + len(t)))
        pos += len(t) + 1
    return " ".join(texts), out


def test_shading_follows_the_stance_label_and_grows_with_confidence():
    text, sentences = _sentences(["Sure US.", "Unsure US.", "Russia.", "Background."])
    stance = np.array([[0.95, 0.03, 0.02], [0.45, 0.30, 0.25], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    sentiment = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    profile = build_profile(sentences, {"stance": stance, "sentiment": sentiment}, HEADS, {}, SETTINGS,
                            include_sentences=True)
    colors = label_colors(HEADS["stance"], "pro_us_alignment", "pro_russia_engagement")
    segs = [s for s in article_segments(text, profile, colors) if s["kind"] == "sentence"]
    alpha = [float(re.search(r"([\d.]+)\)$", s["style"]).group(1)) for s in segs]
    assert alpha[0] > alpha[1]
    assert [s["label"] for s in segs] == ["pro_us_alignment", "pro_us_alignment", "pro_russia_engagement", "neutral"]
    assert [s["mark"] for s in segs] == ["negative", "neutral", "positive", "neutral"]
    assert "0, 114, 178" in segs[0]["style"] and "213, 94, 0" in segs[2]["style"]


def test_palette_is_colour_blind_safe_and_distinct():
    colors = label_colors(HEADS["stance"], "pro_us_alignment", "pro_russia_engagement")
    assert colors["pro_us_alignment"] in OKABE_ITO and colors["pro_russia_engagement"] in OKABE_ITO
    assert len(set(colors.values())) == 3


def test_dropped_lines_are_never_placed_inside_a_sentence():
    text = "Subscribe to our newsletter now, he said.\nSubscribe to our newsletter\nEnd."
    sentence = SentencePrediction(text="Subscribe to our newsletter now, he said.", heads={}, start=0, end=41)
    (start, end), = locate_dropped(text, ["Subscribe to our newsletter"], [sentence])
    assert (start, end) == (42, 69) and text[start:end] == "Subscribe to our newsletter"


def test_read_article_rejects_non_utf8_naming_the_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt: not valid UTF-8"):
        read_article(path)


def test_cli_explain_writes_the_page_and_prints_the_profile(tiny_artifact, tmp_path, sample_article):
    (tmp_path / "sochi.txt").write_text(sample_article, encoding="utf-8")
    out = tmp_path / "view" / "sochi.html"
    result = CliRunner().invoke(app, ["explain", str(tmp_path / "sochi.txt"), "--artifact", str(tiny_artifact),
                                      "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "sochi: 24 content sentences, 7 dropped lines" in result.output and str(out) in result.output
    assert len(_parse(out.read_text()).titles) == 24


def test_cli_explain_missing_article_is_one_line_error(tiny_artifact, tmp_path):
    result = CliRunner().invoke(app, ["explain", str(tmp_path / "nope.txt"), "--artifact", str(tiny_artifact)])
    assert result.exit_code == 2
    assert "nope.txt: article file not found" in result.output


def test_missing_parent_directories_are_created(tiny_artifact, service, tmp_path):
    out = tmp_path / "deep" / "er" / "a.html"
    explain_article(tiny_artifact, "Japan signed a gas deal with Russia.", out, service=service)
    assert Path(out).is_file()
