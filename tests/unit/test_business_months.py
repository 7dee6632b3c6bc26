"""The month an event counts towards in the business metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from churnstream.models.business import month_of


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))  # 1970 to 2100
def test_month_of_is_the_utc_calendar_month(ts: float) -> None:
    assert month_of(ts) == datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m")
