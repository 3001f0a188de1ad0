"""Attribute sentences to speakers: quotations and reporting verbs ("said", "told", "according to").

A sentence is attributed when it names a speaker with a reporting verb, or when
it is a quotation (or uses a pronoun with a reporting verb) and an earlier
sentence named one: the nearest preceding attribution carries over. A reporting
verb whose subject is not a name ("the official said") starts an unnamed speaker,
so later quotations are not credited to the previous named one.
"""

from __future__ import annotations

import re

_VERBS = r"(?:said|says|told|added|stated|noted|argued|warned|insisted|stressed|explained|wrote|declared|asserted|claimed|acknowledged|suggested|announced)"
_TITLE = r"(?:(?:Mr|Ms|Mrs|Dr|Gen|Sen|Rep|Gov|Prof)\.?\s+)"
_NAME = r"(?:[A-Z][a-zA-Z'’\-]+)"
_FULLNAME = rf"({_TITLE}?{_NAME}(?:\s+{_NAME}){{0,3}})"
_PRONOUN = r"\b(?:he|she|they|He|She|They)\b"
_NOT_NAMES = {
    "The", "A", "An", "It", "This", "That", "These", "Those", "But", "And", "When", "While", "In", "On", "As", "If",
    "He", "She", "They", "We", "I", "You", "There", "Officials", "Reports", "Analysts", "Experts", "Some", "Many",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October", "November", "December", "Jan", "Feb", "Aug",
    "Sept", "Oct", "Nov", "Dec", "Today", "Yesterday",
}

# "Emre Kocabas, an economist at Galata Research, said" / "..., said Ms. Goto, a senior associate" /
# "Kremlin spokesman Dmitry Peskov said" / "according to Japan News". After the verb only an inverted
# attribution counts ("said Ms. Goto." or "said Ms. Goto, ..."): in "said Ankara would" the name opens the
# reported clause.
_PATTERNS = [
    re.compile(rf"{_FULLNAME},\s+(?:a|an|the|who|whose)\s+[^,“”\"]+,\s+{_VERBS}\b"),
    re.compile(rf"\b{_VERBS}\s+{_FULLNAME}(?=\s*(?:[,.;:]|$))"),
    re.compile(rf"{_FULLNAME},?\s+{_VERBS}\b"),
    re.compile(rf"\baccording to (?:the\s+)?{_FULLNAME}"),
]
_ANY_REPORT = re.compile(rf"\b{_VERBS}\b|\baccording to\b")
_PRONOUN_REPORT = re.compile(rf"{_PRONOUN},?\s+{_VERBS}\b")
_QUOTE_START = re.compile(r"^\s*[“\"‘']")
_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"")


def _outside_quotes(sentence: str) -> str:
    """The sentence with quoted words removed: "Poland warned" inside a quote names no speaker."""
    return _QUOTED.sub("“”", sentence)


def _clean(name: str) -> str | None:
    tokens = re.sub(_TITLE, "", name).split()
    while tokens and tokens[0] in _NOT_NAMES:
        tokens = tokens[1:]
    if not tokens:
        return None
    # Keep the person-like tail: "State Department deputy spokesman Mark Toner" -> "Mark Toner".
    return " ".join(tokens[-2:]) if len(tokens) > 2 else " ".join(tokens)


def named_speaker(sentence: str) -> str | None:
    """Speaker named with a reporting verb in this sentence, if any."""
    return _named(_outside_quotes(sentence))


def _named(sentence: str) -> str | None:
    # Every pattern needs a reporting verb or "according to": most sentences end at this cheap test.
    if not _ANY_REPORT.search(sentence):
        return None
    for pattern in _PATTERNS:
        for m in pattern.finditer(sentence):
            name = _clean(m.group(1))
            if name:
                return name
    return None


def attribute_speakers(sentences: list[str]) -> list[str | None]:
    """Speaker per sentence (None if unattributed), merging short and full forms of a name."""
    out: list[str | None] = []
    last: str | None = None
    full_by_surname: dict[str, str] = {}
    for s in sentences:
        outside = _outside_quotes(s)
        name = _named(outside)
        if name:
            surname = name.split()[-1]
            if len(name.split()) > 1:
                full_by_surname.setdefault(surname, name)
            name = full_by_surname.get(surname, name)
            last = name
            out.append(name)
            continue
        pronoun = _PRONOUN_REPORT.search(outside)
        if _ANY_REPORT.search(outside) and not pronoun:
            last = None  # someone unnamed is speaking now
        out.append(last if last and (_QUOTE_START.match(s) or pronoun) else None)
    return out
