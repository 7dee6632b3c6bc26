"""The month an event counts towards in the business metrics, and its bounds."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from churnstream.models.business import (
    month_at,
    month_before,
    month_bounds,
    month_index,
    month_of,
)


@given(st.floats(min_value=-62_135_596_800, max_value=253_402_300_799, allow_nan=False))
def test_month_of_is_the_utc_calendar_month(ts: float) -> None:
    """Years 1 to 9999: `YYYY-MM`, four digits however early (strftime gives "999-12"), so
    that months compare as strings."""
    at = datetime.fromtimestamp(ts, tz=UTC)
    assert month_of(ts) == f"{at.year:04d}-{at.month:02d}"


@given(st.datetimes(timezones=st.just(UTC)))  # years 1 to 9999, as events may carry them
def test_a_month_holds_its_times_and_follows_the_month_before(at: datetime) -> None:
    ts = at.timestamp()
    month = month_of(ts)
    start, end = month_bounds(month)
    assert start <= ts < end and len(month) == 7
    assert month_of(end - 1e-3) == month
    assert month_at(month_index(month)) == month
    assert month_index(month) == at.year * 12 + at.month - 1  # the months since year 0
    before = month_before(month)
    if before is None:
        assert month == "0001-01"
    else:
        assert month_of(start - 1.0) == before < month
        assert month_index(before) == month_index(month) - 1
