"""Notifier gauges read from its tables at scrape time: notification states, due and late
pushes, escalations, dead deliveries and the safety net's open items. Table-wide, so every
replica reports the same values: aggregate them with max(), never sum()."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

from prometheus_client import Gauge
from sqlalchemy import ColumnElement, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.context import AppContext
from services.common.local_time import LONDON
from services.common.metrics import add_refresher
from services.notifier.chain import OPEN_STATES
from services.notifier.domain import NotificationState
from services.notifier.models import (
    emails,
    notifications,
    review_alerts,
    schools,
    webhook_deliveries,
)

LATE_GRACE = timedelta(minutes=15)
DELIVERY_STATUSES = {"email": ("pending", "sent", "dead"),
                     "webhook": ("pending", "delivered", "dropped", "dead")}
_LATE_HELP = (
    "not pushed by its deadline: the school's day start on the push day, or 15 minutes "
    "after the push time if that is later (LA recipients: 15 minutes after the push time)")


def observe_notifications(ctx: AppContext) -> None:
    """Register the notifier's table gauges on ctx.registry, refreshed on each scrape."""
    by_state = Gauge("daybreak_notifications", "Notifications by state", ["state"],
                     registry=ctx.registry)
    counts = {name: Gauge(f"daybreak_notifications_{name}", text, registry=ctx.registry)
              for name, text in (
                  ("due", "Scheduled notifications whose push time has come (not yet pushed)"),
                  ("late", f"Scheduled notifications {_LATE_HELP}"),
                  ("sent_late", f"Notifications pushed after their deadline: {_LATE_HELP}"))}
    escalations = Gauge(
        "daybreak_notification_escalations",
        "Notifications escalated for want of acknowledgement, by who was told "
        "(deputy_dsl first, then la)", ["to"], registry=ctx.registry)
    deliveries = Gauge(
        "daybreak_deliveries", "Staged e-mails and webhooks by status; dead ones ran out of "
        "attempts and wait for an operator", ["channel", "status"], registry=ctx.registry)
    open_items = Gauge(
        "daybreak_open_items", "Open items of the safety net (notifications not acknowledged, "
        "reviews not resolved), and those past their owner's deadline", ["kind", "when"],
        registry=ctx.registry)
    stranded = Gauge(
        "daybreak_dead_emails_not_handed_on", "E-mails that failed for good and were handed "
        "to no one (the service desk's own, or about items closed since)", registry=ctx.registry)

    async def refresh() -> None:
        async with ctx.engine.connect() as conn:
            states: dict[str, int] = dict((await conn.execute(
                select(notifications.c.state, func.count()).group_by(notifications.c.state)
            )).all())
            summary = await _summary(conn, ctx.clock())
            delivered = (await conn.execute(_deliveries())).all()
            items = (await conn.execute(_open_items(ctx.clock()))).one()
        for state in get_args(NotificationState):
            by_state.labels(state).set(states.get(state, 0))
        for name, gauge in counts.items():
            gauge.set(summary[name])
        escalations.labels("deputy_dsl").set(summary["to_deputy"])
        escalations.labels("la").set(summary["to_la"])
        for channel, statuses in DELIVERY_STATUSES.items():
            for status in statuses:
                deliveries.labels(channel, status).set(0)
        for channel, status, count in delivered:
            deliveries.labels(channel, status).set(count)
        for kind in ("notification", "review"):
            open_items.labels(kind, "open").set(getattr(items, f"{kind}s"))
            open_items.labels(kind, "past_deadline").set(getattr(items, f"{kind}s_late"))
        stranded.set(items.stranded)

    add_refresher(ctx, "notifications", refresh)


def _late_at() -> ColumnElement[Any]:
    """The push deadline: the later of the day start on the push day and push + grace."""
    n, s = notifications.c, schools.c
    push_day = func.date(func.timezone(LONDON.key, n.push_at))
    day_starts = func.timezone(LONDON.key, push_day + s.day_starts_at)
    return func.greatest(n.push_at + LATE_GRACE, day_starts)  # greatest() skips NULLs


async def _summary(conn: AsyncConnection, now: Any) -> dict[str, int]:
    n = notifications.c
    late_at = _late_at()
    scheduled = n.state == "scheduled"
    row = (await conn.execute(
        select(
            func.count().filter(scheduled, n.push_at <= now).label("due"),
            func.count().filter(scheduled, late_at < now).label("late"),
            func.count().filter(n.sent_at > late_at).label("sent_late"),
            func.count().filter(n.escalations_sent >= 1).label("to_deputy"),
            func.count().filter(n.escalations_sent >= 2).label("to_la"),
        ).select_from(notifications.outerjoin(schools, schools.c.urn == n.school_urn))
    )).one()
    return dict(row._mapping)


def _deliveries() -> Any:
    e, w = emails.c, webhook_deliveries.c
    return union_all(
        select(literal("email"), e.status, func.count()).group_by(e.status),
        select(literal("webhook"), w.status, func.count()).group_by(w.status),
    )


def _open_items(now: Any) -> Any:
    n, a, e = notifications.c, review_alerts.c, emails.c
    is_open = n.state.in_(OPEN_STATES)
    unresolved = a.resolved_at.is_(None)
    return select(
        select(func.count()).where(is_open).scalar_subquery().label("notifications"),
        select(func.count()).where(is_open, n.deadline_at < now).scalar_subquery()
        .label("notifications_late"),
        select(func.count()).select_from(review_alerts).where(unresolved).scalar_subquery()
        .label("reviews"),
        select(func.count()).select_from(review_alerts).where(unresolved, a.deadline_at < now)
        .scalar_subquery().label("reviews_late"),
        select(func.count()).select_from(emails).where(e.status == "dead",
                                                       e.handed_on_at.is_(None))
        .scalar_subquery().label("stranded"),
    )
