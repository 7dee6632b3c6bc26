"""Sentiment of support-ticket text from a small lexicon: no model to download at run time.

Scores run from -1 (angry) to 1 (delighted); a negation flips the next sentiment word.

>>> ticket_sentiment("Still broken after a week, very frustrating")
-1.0
>>> ticket_sentiment("Thanks, works great now!")
1.0
>>> ticket_sentiment("not happy with the export")
-1.0
>>> ticket_sentiment("How do I add a user?")
0.0
"""

from __future__ import annotations

import re

POSITIVE = frozenset(
    "thanks thank great love excellent awesome perfect happy helpful quick fast works "
    "working resolved easy amazing appreciate good nice smooth pleased fantastic".split()
)
NEGATIVE = frozenset(
    "broken bug buggy error errors fail failed failing failure slow unusable frustrating "
    "frustrated terrible awful angry disappointed disappointing cancel cancelling "
    "cancellation refund wrong missing crash crashes down outage worse worst poor "
    "unacceptable annoying useless charged complaint issue problem stuck again".split()
)
NEGATIONS = frozenset("not no never isn't doesn't don't didn't wasn't cannot can't".split())
INTENSIFIERS = frozenset("very really extremely so totally".split())
_WORD = re.compile(r"[a-z']+")


def ticket_sentiment(text: str) -> float:
    """Lexicon sentiment of `text` in [-1, 1]; 0 when it carries none."""
    score, weight, negate, boost = 0.0, 0.0, False, 1.0
    for word in _WORD.findall(text.lower()):
        if word in NEGATIONS:
            negate = True
            continue
        if word in INTENSIFIERS:
            boost = 1.5
            continue
        polarity = 1.0 if word in POSITIVE else -1.0 if word in NEGATIVE else 0.0
        if polarity:
            score += -polarity * boost if negate else polarity * boost
            weight += boost
            negate, boost = False, 1.0
    if weight == 0:
        return 0.0
    return max(-1.0, min(1.0, 2 * score / (weight + 1)))
