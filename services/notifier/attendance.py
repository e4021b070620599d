"""Attendance the morning after: the DSL records it per child, and nobody's answer is lost.

`POST /v1/notifications/{id}/attendance` (and the portal's forms) store each child's answer;
a child reported absent goes to the LA at once, audited per child. `AttendanceFollowUp`
chases the rest (services/common/escalation.py defines the chain): at the LA's prompt time
the DSL gets a content-free e-mail about the children with no answer, and at its second time
the children still without one go to the LA. A notification's `attendance_stage` moves
0 (waiting) → 1 (DSL prompted) → 2 (done: the LA told, every child answered, or withdrawn).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Final

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.disclosures import Channel
from schemas.incidents import MAX_CHILDREN
from services.common.db import UnitOfWork, json_rows_param, update_json_rows
from services.common.escalation import ATTENDANCE_LA_AT, ATTENDANCE_PROMPT_AT
from services.common.local_time import LONDON
from services.common.problems import Problem, problem_responses
from services.common.runner import in_background
from services.common.security import Principal
from services.notifier.api import _WITHDRAWN, Acker, Ctx, _locked
from services.notifier.channels import EmailKind
from services.notifier.context import NotifierContext
from services.notifier.dispatch import DELIVERED
from services.notifier.handlers import ABSENT_REASON, NotifierDeps, tell_la
from services.notifier.models import local_authorities, notification_children, notifications
from services.notifier.outgoing import _SYSTEM, audit_sent_about, queue_email
from services.notifier.scheduling import _local_moment

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/notifications", tags=["notifications"],
                   responses=problem_responses(401, 403))
# a push after the LA's prompt time: the DSL gets this long to answer, then the LA is told
LATE_PROMPT_AFTER: Final = timedelta(minutes=60)
LATE_LA_AFTER: Final = timedelta(minutes=180)
# notifications pushed longer ago than this are not chased (a first start of the follow-up
# must not prompt for last term's notifications)
LOOKBACK: Final = timedelta(days=7)
UNKNOWN_REASON: Final = "attendance_unknown"
# until services/notifier/channels.EmailKind names it (and render_email words it)
PROMPT_KIND: Final[EmailKind] = "attendance_prompt"
WAITING, PROMPTED, DONE = 0, 1, 2
_ABSENT_PURPOSE = "child absent the morning after an incident"
_UNKNOWN_PURPOSE = "nobody recorded whether the child attended the morning after an incident"


class ChildAttendance(BaseModel):
    """One child's answer: at school this morning, or not."""

    model_config = ConfigDict(extra="forbid")
    child_id: uuid.UUID
    attended: bool


class AttendanceIn(BaseModel):
    """`POST /v1/notifications/{id}/attendance`: answers for some or all of its children."""

    model_config = ConfigDict(extra="forbid")
    children: list[ChildAttendance] = Field(min_length=1, max_length=MAX_CHILDREN)

    @model_validator(mode="after")
    def _once_each(self) -> AttendanceIn:
        if len({c.child_id for c in self.children}) != len(self.children):
            raise ValueError("each child may be answered once")
        return self


@router.post("/{notification_id}/attendance", responses=problem_responses(404, 410))
async def post_attendance(
    notification_id: uuid.UUID, body: AttendanceIn, principal: Acker, ctx: Ctx
) -> dict[str, Any]:
    """Record which children attended school this morning (any time, as often as needed); a
    child reported absent is told to the LA at once. The answer names no child."""
    return await record_attendance(ctx, notification_id, principal, channel="api",
                                   answers=body.children)


async def record_attendance(
    ctx: NotifierContext, notification_id: uuid.UUID, principal: Principal, *,
    channel: Channel, answers: Sequence[ChildAttendance] = (), unanswered: bool | None = None,
) -> dict[str, Any]:
    """Store `answers`, or `unanswered` for every child with no answer yet (the acknowledge
    form's one question); children newly reported absent go to the LA, each one audited."""
    now = ctx.clock()
    async with ctx.uow() as uow:
        row = await _locked(uow.conn, notification_id, principal)
        if row.school_urn is None or row.school_urn not in principal.school_urns:
            raise Problem(403, "Forbidden", "Only the school's DSL or deputy records attendance.")
        if row.state in _WITHDRAWN:
            raise Problem(410, "Withdrawn", "The police withdrew this notification.")
        children = {c["child_id"]: c for c in await _children(uow.conn, row.id)}
        if unanswered is not None:
            answers = [ChildAttendance(child_id=k, attended=unanswered)
                       for k, c in children.items() if c["attended"] is None]
        _check_known(answers, children)
        absent = [children[a.child_id] for a in answers
                  if not a.attended and children[a.child_id]["attended"] is not False]
        for answer in answers:
            await uow.conn.execute(update(notification_children).where(
                notification_children.c.notification_id == row.id,
                notification_children.c.child_id == answer.child_id).values(
                attended=answer.attended, attendance_at=now, attendance_by=principal.subject))
        if absent:
            await tell_la(uow.conn, ctx.deps, notification=row, children=absent,
                          principal=principal, channel=channel, reason=ABSENT_REASON,
                          action="absence.report", purpose=_ABSENT_PURPOSE,
                          topic_prefix=ctx.settings.topic_prefix)
        await uow.commit()
    ctx.wake_relay()
    answered = {a.child_id for a in answers}
    waiting = [k for k, c in children.items() if c["attended"] is None and k not in answered]
    return {"id": str(row.id), "recorded": len(answers), "absent_told_to_la": len(absent),
            "unanswered": len(waiting)}


async def attendance_of(ctx: NotifierContext, notification_id: uuid.UUID) -> list[Any]:
    """Each child's answer so far (id, attended, when), ordered as the notification's view
    orders its children; no child data. The caller has checked who may see it."""
    c = notification_children.c
    async with ctx.engine.connect() as conn:
        return list((await conn.execute(
            select(c.child_id, c.attended, c.attendance_at)
            .where(c.notification_id == notification_id).order_by(c.child_id))).all())


def attendance_times(
    pushed_at: datetime, *, prompt_at: time = ATTENDANCE_PROMPT_AT,
    la_at: time = ATTENDANCE_LA_AT,
) -> tuple[datetime, datetime]:
    """When the DSL is prompted and when the LA is told (UTC), for a push at `pushed_at`:
    the LA's London times on the push day, or 60 and 180 minutes after a push that comes
    after the prompt time."""
    day = pushed_at.astimezone(LONDON).date()
    prompt, tell = _local_moment(day, prompt_at, LONDON), _local_moment(day, la_at, LONDON)
    if pushed_at >= prompt:
        return pushed_at + LATE_PROMPT_AFTER, pushed_at + LATE_LA_AFTER
    return prompt, max(tell, prompt)


_PLANNED = update_json_rows(notifications, "id", ["attendance_prompt_at", "attendance_la_at"])


def _planned(row: Any) -> dict[str, Any]:
    """A planned notification's two times, from its LA's settings or the defaults."""
    prompt, tell = attendance_times(
        row.pushed_at, prompt_at=row.attendance_prompt_at or ATTENDANCE_PROMPT_AT,
        la_at=row.attendance_la_at or ATTENDANCE_LA_AT)
    return {"id": row.id, "attendance_prompt_at": prompt, "attendance_la_at": tell}


def unplanned(now: datetime, limit: int) -> Any:
    """DSLs' notifications pushed within LOOKBACK up to `now` whose prompt and hand-over times
    are not yet set, with their LA's settings, locked (ix_notifications_attendance_unplanned)."""
    n, la = notifications.c, local_authorities.c
    pushed_at = func.coalesce(n.sent_at, n.push_at)  # the index's expression
    return (select(n.id, pushed_at.label("pushed_at"),
                   la.attendance_prompt_at, la.attendance_la_at)
            .select_from(notifications.outerjoin(local_authorities, la.la_code == n.la_code))
            .where(n.school_urn.is_not(None), n.recipient_role == "dsl",
                   n.state.in_(DELIVERED), n.attendance_stage == WAITING,
                   n.attendance_prompt_at.is_(None),
                   # bounded both ways: tomorrow's alerts, scheduled tonight, sit in the
                   # same index and would otherwise be walked past on every pass
                   pushed_at > now - LOOKBACK, pushed_at <= now)
            .limit(limit).with_for_update(of=notifications, skip_locked=True))


def due_at_stage(stage: int, at: Any, now: datetime, limit: int) -> Any:
    """Notifications at `stage` whose time `at` (their prompt's or their hand-over's) has
    come, earliest first, locked (ix_notifications_attendance, ..._attendance_la)."""
    return (select(notifications).where(notifications.c.attendance_stage == stage, at <= now)
            .order_by(at).limit(limit).with_for_update(skip_locked=True))


@dataclass
class AttendanceFollowUp:
    """Plans, prompts and hands on; each step locks its notifications FOR UPDATE SKIP LOCKED
    in its own transaction, so two processes share the work and never repeat it."""

    engine: AsyncEngine
    deps: NotifierDeps
    clock: Callable[[], datetime]
    topic_prefix: str = ""
    batch_size: int = 200

    @classmethod
    def of(cls, ctx: NotifierContext) -> AttendanceFollowUp:
        """The follow-up on the context's engine and clock (a test that pins ctx.clock pins it)."""
        return cls(engine=ctx.engine, deps=ctx.deps, clock=lambda: ctx.clock(),
                   topic_prefix=ctx.settings.topic_prefix)

    async def run_once(self) -> int:
        """One pass; the number of notifications moved on."""
        return await self.plan() + await self.prompt() + await self.hand_to_la()

    async def run(self, *, interval_s: float) -> None:
        """Passes until cancelled; a failed pass is logged and tried again."""
        while True:
            try:
                busy = await self.run_once() > 0
            except Exception as exc:
                log.warning("attendance pass failed", extra={"exc_type": type(exc).__name__})
                busy = False
            if not busy:
                await asyncio.sleep(interval_s)

    async def plan(self) -> int:
        """Give each notification pushed to a DSL its two times, from its LA's settings."""
        async with UnitOfWork(self.engine) as uow:
            rows = (await uow.conn.execute(unplanned(self.clock(), self.batch_size))).all()
            if rows:  # one execution for the pass, however many it plans
                await uow.conn.execute(_PLANNED, json_rows_param([_planned(r) for r in rows]))
            await uow.commit()
        return len(rows)

    async def prompt(self) -> int:
        """At the prompt time: one e-mail per school about its notifications with a child
        whose attendance nobody recorded; the others are done."""
        now = self.clock()
        async with UnitOfWork(self.engine) as uow:
            rows = await self._due(uow.conn, WAITING, notifications.c.attendance_prompt_at, now)
            schools: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
            for row in rows:
                waiting = await self._unanswered(uow.conn, row)
                await self._move(uow.conn, row, PROMPTED if waiting else DONE)
                if waiting:
                    schools[(row.school_urn, row.la_code)].append(row)
            for (urn, la_code), members in schools.items():
                await queue_email(uow.conn, kind=PROMPT_KIND, school_urn=urn, la_code=la_code,
                                  recipient_role="dsl", notification_ids=[m.id for m in members],
                                  now=now, service_desk=self.deps.service_desk)
                for member in members:
                    await audit_sent_about(uow.conn, topic_prefix=self.topic_prefix,
                                           notification=member, action="attendance.prompted",
                                           purpose="attendance not yet recorded", at=now)
            await uow.commit()
        return len(rows)

    async def hand_to_la(self) -> int:
        """At the LA's time: the children still without an answer go to the LA."""
        now = self.clock()
        async with UnitOfWork(self.engine) as uow:
            rows = await self._due(uow.conn, PROMPTED, notifications.c.attendance_la_at, now)
            for row in rows:
                waiting = await self._unanswered(uow.conn, row)
                if waiting:
                    await tell_la(uow.conn, self.deps, notification=row, children=waiting,
                                  principal=_SYSTEM, channel="email", reason=UNKNOWN_REASON,
                                  action="attendance.unknown", purpose=_UNKNOWN_PURPOSE,
                                  topic_prefix=self.topic_prefix)
                await self._move(uow.conn, row, DONE)
            await uow.commit()
        return len(rows)

    async def _due(self, conn: AsyncConnection, stage: int, at: Any, now: datetime
                   ) -> list[Any]:
        return list((await conn.execute(due_at_stage(stage, at, now, self.batch_size))).all())

    @staticmethod
    async def _unanswered(conn: AsyncConnection, row: Any) -> list[dict[str, Any]]:
        """The children nobody has answered for (none once the police withdrew it)."""
        if row.state in _WITHDRAWN:
            return []
        return [c for c in await _children(conn, row.id) if c["attended"] is None]

    @staticmethod
    async def _move(conn: AsyncConnection, row: Any, stage: int) -> None:
        await conn.execute(update(notifications).where(notifications.c.id == row.id)
                           .values(attendance_stage=stage))


@asynccontextmanager
async def following_up(ctx: NotifierContext, *, interval_s: float) -> AsyncIterator[None]:
    """The attendance follow-up in the background while the context is open."""
    async with in_background(AttendanceFollowUp.of(ctx).run(interval_s=interval_s)):
        yield


async def _children(conn: AsyncConnection, notification_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.execute(select(notification_children).where(
        notification_children.c.notification_id == notification_id)
        .order_by(notification_children.c.child_id))
    return [dict(r._mapping) for r in rows]


def _check_known(answers: Sequence[ChildAttendance], children: Mapping[uuid.UUID, Any]) -> None:
    unknown = [i for i, a in enumerate(answers) if a.child_id not in children]
    if unknown:
        raise Problem(422, "Invalid request body", f"{len(unknown)} child(ren) are not in it.",
                      extra={"errors": [{"field": f"children[{i}].child_id",
                                         "message": "not a child of this notification"}
                                        for i in unknown]})
