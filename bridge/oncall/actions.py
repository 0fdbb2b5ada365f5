"""What a person can do to an incident from wherever the page reached them.

Every public callback (Twilio SMS and voice, Slack buttons, e-mail links, PagerDuty webhooks) and
the console end in one ``IncidentActions.act`` call, so that each action is applied, audited on
the incident's timeline (who, how) and stops or re-arms the escalation the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

# acknowledge, resolve and silence answer a page (from anywhere it reached someone); the others
# are the console's and the API's work on an incident: unacknowledge (back to firing, the
# escalation from step 1), snooze/unsnooze (off the Now page, pages held, not acknowledged),
# assign (to a console user, "" for nobody), note (free text on the timeline)
Action = Literal[
    "acknowledge", "resolve", "silence", "unacknowledge", "snooze", "unsnooze", "assign", "note"
]
ACTIONS: tuple[Action, ...] = (
    "acknowledge",
    "resolve",
    "silence",
    "unacknowledge",
    "snooze",
    "unsnooze",
    "assign",
    "note",
)
# How long an acknowledgement lasts: a time, "policy" (the escalation policy's ack_timeout, or
# until resolved without one), "resolved" (until resolved, whatever the policy says)
AckFor = timedelta | Literal["policy", "resolved"]
MAX_NOTE = 2000  # characters of a note
# How the action arrived: shown on the timeline and counted in metrics.
Via = Literal["console", "sms", "voice", "slack", "email", "pagerduty", "api", "cli", "push"]


@dataclass(frozen=True)
class ActionResult:
    """What an action did. ``changed`` is False when the incident already was in that state
    (a repeated press, a replayed link): nothing is written twice."""

    incident_id: int
    action: Action
    changed: bool
    status: str  # the incident's status after the action: firing, acknowledged, resolved
    title: str
    detail: Mapping[str, Any] | None = None  # what the timeline entry says (when changed)


class UnknownIncident(LookupError):
    """No incident with that id (or not one this person may act on)."""


class OutsideScope(Exception):
    """The incident an action would change (the one asked for, or the one it was merged into)
    touches none of the organizations the caller is limited to. (Not a ``PermissionError``:
    that is an ``OSError``, which the storage takes for an unreachable database.)"""

    def __init__(self, asked: int, acted_on: int) -> None:
        merged = f" was merged into incident #{acted_on}, which" if acted_on != asked else ""
        super().__init__(f"incident #{asked}{merged} is outside your organizations")
        self.asked, self.acted_on = asked, acted_on


class ActionRefused(ValueError):
    """The action cannot apply to the incident as it stands (it has resolved): the message
    says why, for a 409."""


class BadArgument(ActionRefused):
    """An argument of the action is out of bounds (a note too long, a snooze of 0): a 400."""


class IncidentActions(Protocol):
    async def act(
        self,
        incident_id: int,
        action: Action,
        *,
        person_id: str,
        via: Via,
        silence_for: timedelta | None = None,
        detail: Mapping[str, Any] | None = None,
        ack_for: AckFor = "policy",
        snooze_for: timedelta | None = None,
        assignee: str = "",
        text: str = "",
        within: Collection[str] | None = None,
    ) -> ActionResult:
        """Apply ``action`` as ``person_id``; raises UnknownIncident for an unknown id and
        ActionRefused when it cannot apply. ``detail`` goes on the timeline entry with who and
        how (a note, what else it did); ``ack_for`` (acknowledge), ``snooze_for`` (snooze),
        ``assignee`` (assign) and ``text`` (note) are the actions' arguments. ``within``: the
        caller is limited to these organizations; the incident acted on (after following
        merges) must touch one of them, else OutsideScope and nothing changes."""
        ...
