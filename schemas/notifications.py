"""`notifications.v1`: each notification's life, content-free, keyed by incident id.

The notifier publishes these through its outbox. They carry ids, codes, URNs, LA codes and
times, never a child's name, birth date, address or the incident's words: they feed the
police's receipts (ingest) and the partnership's figures, which must never hold child data.
A child is named only by its position in the police report (`child_index`), which the force
already knows.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.envelope import EventPayload

# whom a school brings in (the partner-agency guide), plus domestic abuse services (IDVA) and
# the police contact for the incident: the LA's partner directory is kept per need type
NEED_TYPES: tuple[str, ...] = (
    "education_welfare", "educational_psychology", "school_nurse", "camhs", "early_help",
    "childrens_social_care", "housing", "young_carers", "youth_offending", "voluntary",
    "domestic_abuse_services", "police_contact",
)
NeedType = Literal[
    "education_welfare", "educational_psychology", "school_nurse", "camhs", "early_help",
    "childrens_social_care", "housing", "young_carers", "youth_offending", "voluntary",
    "domestic_abuse_services", "police_contact",
]
# what a school did: a referral to (or work started with) one of the need types, support
# kept in school, or nothing needed
ACTION_TYPES: tuple[str, ...] = (*NEED_TYPES, "support_in_school", "none_needed")
ActionType = Literal[
    "education_welfare", "educational_psychology", "school_nurse", "camhs", "early_help",
    "childrens_social_care", "housing", "young_carers", "youth_offending", "voluntary",
    "domestic_abuse_services", "police_contact", "support_in_school", "none_needed",
]
NOTE_MAX = 500
ActionNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=NOTE_MAX,
                                              pattern=r"^[^\x00]*$")]

RecipientRole = Literal["school", "la"]
PushChannel = Literal["email", "webhook"]
EscalationStage = Literal["deputy", "la"]
# why a notification was taken back: the whole report withdrawn, one child withdrawn, or a
# correction moved the child elsewhere
RetractReason = Literal["incident_withdrawn", "child_withdrawn", "corrected"]
ChildOutcomeKind = Literal["matched", "review", "unmatched"]


class Action(BaseModel):
    """One thing a school did for a notification's children (the note is the school's own words
    and stays in the notifier: events carry the type and date only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: ActionType
    on: date


class LifecycleEvent(EventPayload):
    """What every `notifications.v1` event has: the incident it is keyed by, and when."""

    incident_id: uuid.UUID
    at: AwareDatetime


class _NotificationEvent(LifecycleEvent):
    notification_id: uuid.UUID
    force_code: str
    school_urn: str | None = None  # None: an LA fallback notification
    la_code: str | None = None


class NotificationScheduled(_NotificationEvent):
    """A notification exists (visible in the portal) and has a push time.

    `child_indexes` are the children of the report it is about; `repeat_children` how many of
    them this recipient was told about in the previous 12 months (for the partnership's
    "children notified twice or more"); `deadline_at` the start of the school day it must
    beat (None for an LA). A child who joins a notification that exists (a sibling matched in
    its own event, or a child decided after review) is told by another NotificationScheduled
    with the same `notification_id`: its children are the union of their `child_indexes`,
    its repeat children the sum."""

    event_type = "NotificationScheduled"
    recipient_role: RecipientRole
    child_indexes: list[int] = Field(min_length=1)
    push_at: AwareDatetime
    deadline_at: AwareDatetime | None = None
    repeat_children: int = Field(default=0, ge=0)


class NotificationUpdated(_NotificationEvent):
    """A correction changed what a notification shows: `child_indexes` are the children whose
    details changed (all of them, when the incident's own facts did). Which children it is
    about is still the union of its NotificationScheduled events, less those retracted."""

    event_type = "NotificationUpdated"
    child_indexes: list[int] = Field(min_length=1)


class NotificationPushed(_NotificationEvent):
    """The recipient was told it exists: an e-mail accepted by the relay or a webhook 2xx."""

    event_type = "NotificationPushed"
    channel: PushChannel


class NotificationViewed(_NotificationEvent):
    """Somebody at the recipient first opened the notification's details."""

    event_type = "NotificationViewed"
    viewer_role: str


class NotificationAcknowledged(_NotificationEvent):
    """The recipient acknowledged it, with what they did (codes and dates only)."""

    event_type = "NotificationAcknowledged"
    acknowledger_role: str
    actions: list[Action] = Field(default_factory=list)


class NotificationActionAdded(_NotificationEvent):
    """A follow-up action recorded after the acknowledgement."""

    event_type = "NotificationActionAdded"
    action: Action


class NotificationEscalated(_NotificationEvent):
    """Nobody acknowledged in time: the deputy DSL, then the LA, were told."""

    event_type = "NotificationEscalated"
    stage: EscalationStage


class NotificationRetracted(_NotificationEvent):
    """The notification was cancelled (not yet pushed) or retracted (pushed: a notice sent)."""

    event_type = "NotificationRetracted"
    reason: RetractReason
    child_indexes: list[int] = Field(default_factory=list)  # empty: all of them


class ChildOutcome(LifecycleEvent):
    """Where one reported child ended: on school roll(s), in the LA's review queue, or with the
    LA as unmatched. Published by the notifier as it handles `matches.v1` and `reviews.v1`, so
    ingest need read no other service's topic for its receipts."""

    event_type = "ChildOutcome"
    force_code: str | None = None  # None when the notifier learnt only the review's ids
    child_index: int = Field(ge=0)
    outcome: ChildOutcomeKind
    school_urns: list[str] = Field(default_factory=list)
    la_code: str | None = None
    # "review" when an LA officer decided it; with `review_id`, the queued-to-resolved age
    # of a review can be told: outcome "review" when it was queued, then the decision
    decided_by: Literal["engine", "review"] | None = None
    review_id: uuid.UUID | None = None


NOTIFICATION_EVENTS: tuple[type[LifecycleEvent], ...] = (
    NotificationScheduled, NotificationUpdated, NotificationPushed, NotificationViewed,
    NotificationAcknowledged, NotificationActionAdded, NotificationEscalated,
    NotificationRetracted, ChildOutcome,
)
