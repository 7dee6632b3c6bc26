"""Customer segments and lifetime value.

>>> behaviour_segment({"tenure_days": 5.0, "days_since_login": 1.0}, "green")
'new'
>>> behaviour_segment({"tenure_days": 90.0, "days_since_login": 40.0}, "yellow")
'dormant'
>>> size_segment(450.0), size_segment(2500.0), size_segment(9000.0)
('smb', 'mid-market', 'enterprise')
>>> round(lifetime_value(100.0, 0.95, margin=1.0, annual_discount_rate=0.0), 2)  # m·r/(1+d−r)
1900.0
"""

from __future__ import annotations

BEHAVIOURS = ("new", "active", "at-risk", "dormant", "churned")


def behaviour_segment(
    f: dict[str, float], band: str, churn_probability: float | None = None
) -> str:
    """new (under 30 days), churned, dormant (no login in 30 days), at-risk, or active."""
    if f.get("cancelled"):
        return "churned"
    if f.get("tenure_days", 0.0) < 30:
        return "new"
    if f.get("days_since_login", 365.0) >= 30:
        return "dormant"
    if band == "red" or (churn_probability is not None and churn_probability >= 0.5):
        return "at-risk"
    return "active"


def size_segment(mrr: float | None) -> str:
    if mrr is None:
        return "unknown"
    if mrr < 500:
        return "smb"
    if mrr < 3000:
        return "mid-market"
    return "enterprise"


def monthly_discount(annual_rate: float) -> float:
    return float((1.0 + annual_rate) ** (1.0 / 12.0) - 1.0)


def lifetime_value(
    mrr: float, monthly_retention: float, margin: float, annual_discount_rate: float
) -> float:
    """Σ_{t≥1} m·rᵗ/(1+d)ᵗ = m·r/(1+d−r), with m = margin × MRR and d the monthly discount rate."""
    m = margin * mrr
    r = max(0.0, min(0.999, monthly_retention))
    d = monthly_discount(annual_discount_rate)
    return m * r / (1.0 + d - r)
