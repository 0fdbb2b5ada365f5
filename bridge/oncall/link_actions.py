"""Acting on a verified action token (``bridge.oncall.links``) once: the e-mail link's POST on
the public listener and the Acknowledge of a push notification in the console both end here.

The token's nonce is recorded in ``inbound_requests`` (shared by the replicas) before the
action; a second use finds it there and changes nothing. An action that fails (the database
went away, the incident is unknown) forgets the nonce, so the same token may be tried again.
"""

from __future__ import annotations

from datetime import datetime

from bridge.oncall.actions import Action, ActionResult, IncidentActions, Via
from bridge.oncall.links import AckLink
from bridge.storage import Storage, StorageUnavailable

SOURCE = "ack-link"


class TokenUsed(Exception):
    """The token acted once already."""


async def act_once(
    storage: Storage,
    actions: IncidentActions,
    link: AckLink,
    action: Action,
    *,
    via: Via,
    now: datetime,
) -> ActionResult:
    """``action`` on the token's incident as its person; TokenUsed on a second use. Raises
    what ``IncidentActions.act`` raises (UnknownIncident, StorageUnavailable)."""
    nonce = link.nonce[:200]
    async with storage.transaction() as tx:
        if not await tx.first_seen(SOURCE, nonce, now):
            raise TokenUsed(nonce)
    try:
        return await actions.act(link.incident_id, action, person_id=link.person_id, via=via)
    except BaseException:
        try:
            async with storage.transaction() as tx:
                await tx.forget_inbound(SOURCE, nonce)
        except StorageUnavailable:
            pass
        raise
