"""Speaker attribution for quoted and reported sentences."""

from __future__ import annotations

import pytest

from stancekit.serve.speakers import attribute_speakers, named_speaker


@pytest.mark.parametrize(
    "sentence, speaker",
    [
        ("“Japan and Russia are officially still at war,” said Ms. Goto.", "Goto"),
        ("Tokyo is pursuing its own policy, said Shihoko Goto, a senior associate.", "Shihoko Goto"),
        ("“It shouldn’t be exclusive,” State Department deputy spokesman Mark Toner said last month.", "Mark Toner"),
        ("The offer was made in Tokyo, according to Japan News.", "Japan News"),
        ("Ms. Goto said Wednesday that talks would resume.", "Goto"),
        ("Nearly 60 years later, there is no official peace treaty.", None),
        # The name after the verb opens the reported clause: no speaker is named.
        ("The minister said Ankara would keep channels open to Moscow.", None),
        ("Ms. Aydemir said Ankara had drawn diplomatic credit.", "Aydemir"),
        # Appositives between the name and the verb.
        ("Tomasz Wielgosz, a security analyst at the Vistula Policy Forum, said the drill was a signal.",
         "Tomasz Wielgosz"),
        ("Jerzy Malinowski, who heads a trucking association, said farmers were losing money.", "Jerzy Malinowski"),
        # Names and reporting verbs inside a quotation are not its speaker.
        ("“For years, Poland warned that Russia could not be trusted,” Mr. Wielgosz said.", "Wielgosz"),
    ],
)
def test_named_speaker(sentence, speaker):
    assert named_speaker(sentence) == speaker


def test_attribute_speakers_carries_quotes_and_merges_name_forms():
    sentences = [
        "Tokyo is pursuing its own policy, said Shihoko Goto, a senior associate.",
        "“There are shades of gray.”",
        "The administration has downplayed the conflict.",
        "“Japan and Russia are still at war,” said Ms. Goto.",
        "She said the dispute was decades old.",
    ]
    assert attribute_speakers(sentences) == ["Shihoko Goto", "Shihoko Goto", None, "Shihoko Goto", "Shihoko Goto"]


def test_sample_article_speakers(sample_article):
    from stancekit.serve.sentences import split_article

    texts = [s.text for s in split_article(sample_article).sentences]
    speakers = attribute_speakers(texts)
    assert speakers.count("Shihoko Goto") >= 5
    assert "Mark Toner" in speakers and "Dmitry Peskov" in speakers


def test_unnamed_speaker_ends_the_carry_over():
    sentences = [
        "Tomasz Wielgosz, a security analyst, said the drill was a signal.",
        "“Warsaw is at the table now.”",
        "“Poland has shown what a front-line ally looks like,” the official said.",
        "“Every sanction that is watered down is a gift to the Kremlin.”",
        "“We are not there yet,” Mr. Wielgosz said.",
        "“Threats only make us stronger,” he said.",
    ]
    assert attribute_speakers(sentences) == [
        "Tomasz Wielgosz", "Tomasz Wielgosz", None, None, "Tomasz Wielgosz", "Tomasz Wielgosz",
    ]
