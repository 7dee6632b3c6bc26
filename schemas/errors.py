"""The project's root exception and the error raised for an event that cannot be accepted."""

from __future__ import annotations


class ChurnstreamError(Exception):
    """Root of every error churnstream raises on purpose."""


class InvalidEvent(ChurnstreamError):
    """A message that is not a valid event for its topic.

    `code` is a short stable label for metrics (bounded cardinality); `reason` is for people.

    >>> err = InvalidEvent("bad_json", "not JSON: unexpected character")
    >>> err.code, str(err)
    ('bad_json', 'bad_json: not JSON: unexpected character')
    """

    CODES = (
        "oversize",
        "bad_json",
        "not_object",
        "schema",
        "wrong_topic",
        "key_mismatch",
        "too_late",
    )

    def __init__(self, code: str, reason: str) -> None:
        if code not in self.CODES:
            msg = f"unknown invalid-event code {code!r}"
            raise ValueError(msg)
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
