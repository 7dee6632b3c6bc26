"""A risk-change alert as a Slack message: severity, routing and Block Kit layout.

>>> from datetime import UTC, datetime
>>> a = RiskChange(alert_id="a1", customer_id="cus_7", ts=datetime(2025, 3, 1, tzinfo=UTC),
...                kind="band_change", health_score=35.2, previous_health_score=52.0,
...                band="red", previous_band="yellow", segment="at-risk/mid", plan="growth",
...                score_change_7d=-16.8, lifetime_value=12000.0,
...                drivers=[Driver(name="support", contribution=-9.5, direction="down")])
>>> severity(a)
'critical'
>>> message = slack_message(a, crm_url="https://crm.example.com/a/{customer_id}")
>>> message["text"]
'cus_7: yellow → red (health 35, -16.8 in 7 days)'
>>> message["attachments"][0]["color"]
'#d92b2b'
"""

from __future__ import annotations

from typing import Any

from churnstream.models.health import BAND_ORDER
from churnstream.schemas.records import Driver, RiskChange
from churnstream.streams.settings import Settings, Severity

SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
COLOURS = {"green": "#2eb67d", "yellow": "#ecb22e", "red": "#d92b2b"}
ARROWS = {"up": "▲", "down": "▼"}


def severity(alert: RiskChange) -> Severity:
    """critical: red, or likely to churn; warning: worse; info: better."""
    if alert.band == "red" or alert.kind == "churn_risk":
        return "critical"
    if alert.kind == "score_drop":
        return "warning"
    if alert.previous_band is not None and BAND_ORDER[alert.band] < BAND_ORDER[alert.previous_band]:
        return "info"
    return "warning"


def wanted(alert: RiskChange, settings: Settings) -> bool:
    """At or above the configured minimum severity."""
    return SEVERITY_ORDER[severity(alert)] >= SEVERITY_ORDER[settings.slack_min_severity]


def route(alert: RiskChange, settings: Settings) -> tuple[str, str | None]:
    """(route name, webhook URL) for the alert; URL None means the console."""
    behaviour, _, size = alert.segment.partition("/")
    for i, r in enumerate(settings.slack_routes):
        if (
            (not r.bands or alert.band in r.bands)
            and (not r.segments or {behaviour, size, alert.segment} & set(r.segments))
            and (not r.kinds or alert.kind in r.kinds)
        ):
            return f"route{i}", r.webhook_url.get_secret_value()
    if settings.slack_webhook_url is None:
        return "console", None
    return "default", settings.slack_webhook_url.get_secret_value()


def headline(alert: RiskChange) -> str:
    change = (
        f", {alert.score_change_7d:+.1f} in 7 days" if alert.score_change_7d is not None else ""
    )
    if alert.kind == "band_change" and alert.previous_band:
        what = f"{alert.previous_band} → {alert.band}"
    elif alert.kind == "score_drop":
        what = f"score dropped ({alert.band})"
    else:
        what = f"churn risk ({alert.band})"
    return f"{alert.customer_id}: {what} (health {alert.health_score:.0f}{change})"


def _driver(d: Driver) -> str:
    return f"{ARROWS[d.direction]} {d.name} {d.contribution:+.1f}"


def slack_message(alert: RiskChange, crm_url: str | None = None) -> dict[str, Any]:
    """Webhook payload: a fallback `text` and a coloured attachment of Block Kit blocks."""
    text = headline(alert)
    churn = "–" if alert.churn_probability is None else f"{alert.churn_probability:.0%}"
    ltv = "–" if alert.lifetime_value is None else f"${alert.lifetime_value:,.0f}"
    previous = (
        "" if alert.previous_health_score is None else f" (was {alert.previous_health_score:.0f})"
    )
    fields = [
        f"*Health score*\n{alert.health_score:.0f}{previous}",
        f"*Churn probability*\n{churn}",
        f"*Segment*\n{alert.segment}",
        f"*Plan*\n{alert.plan or '–'}",
        f"*Lifetime value*\n{ltv}",
        f"*Event time*\n{alert.ts:%Y-%m-%d %H:%M} UTC",
    ]
    blocks: list[dict[str, Any]] = [
        # block_id carries the alert id, so whoever reads the message can trace it back.
        {
            "type": "header",
            "block_id": alert.alert_id,
            "text": {"type": "plain_text", "text": text[:150]},
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alert.drivers:
        top = ", ".join(_driver(d) for d in alert.drivers[:3])
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"*Drivers:* {top}"}]}
        )
    if crm_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in CRM"},
                        "url": crm_url.format(customer_id=alert.customer_id),
                    }
                ],
            }
        )
    return {"text": text, "attachments": [{"color": COLOURS[alert.band], "blocks": blocks}]}


def console_line(alert: RiskChange) -> str:
    """One line for the console mode."""
    drivers = ", ".join(_driver(d) for d in alert.drivers[:3])
    churn = "" if alert.churn_probability is None else f" churn {alert.churn_probability:.0%}"
    return f"[{severity(alert)}] {headline(alert)}{churn} {alert.segment} {drivers}".rstrip()
