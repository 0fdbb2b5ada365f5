-- On-call escalation: an incident that a route of ONCALL_CONFIG sends to a policy walks that
-- policy's steps. The state lives here, so that every bridge replica sees it, a restart continues
-- where it stopped, and a step is claimed (FOR UPDATE SKIP LOCKED) and sent once.
-- Idempotent, like every migration here.

CREATE TABLE IF NOT EXISTS escalations (
    incident_id BIGINT PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    policy_id TEXT NOT NULL,
    -- active: steps are due at next_at; acknowledged: next_at is when the acknowledgement
    -- expires (the walk starts again at step 1); done: resolved, or every step and repeat sent
    state TEXT NOT NULL CHECK (state IN ('active', 'acknowledged', 'done')),
    step INTEGER NOT NULL DEFAULT 0,      -- the next step to send (0-based)
    round INTEGER NOT NULL DEFAULT 0,     -- walks of the steps so far (0: the first)
    next_at TIMESTAMPTZ,                  -- when something is due; NULL: nothing
    -- the page the steps send (an encoded Message without recipients)
    message TEXT NOT NULL,
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    started_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS escalations_due_idx ON escalations (next_at) WHERE next_at IS NOT NULL;

-- Who each step notified and how: the answer to "who was paged for this incident" (an SMS
-- reply "ack" acknowledges the newest open incident that paged its sender).
CREATE TABLE IF NOT EXISTS escalation_notifications (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    via TEXT NOT NULL,
    address TEXT NOT NULL,
    step INTEGER NOT NULL,
    round INTEGER NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS escalation_notifications_person_idx
    ON escalation_notifications (person_id, at DESC);
CREATE INDEX IF NOT EXISTS escalation_notifications_incident_idx
    ON escalation_notifications (incident_id);

-- Signed requests to the public listener already acted on (Twilio message and call ids, Slack
-- and PagerDuty deliveries, e-mail link tokens): a replay finds its row and changes nothing.
CREATE TABLE IF NOT EXISTS inbound_requests (
    source TEXT NOT NULL,
    request_id TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, request_id)
);
CREATE INDEX IF NOT EXISTS inbound_requests_at_idx ON inbound_requests USING brin (at);

ALTER TABLE escalations ENABLE ROW LEVEL SECURITY;
ALTER TABLE escalation_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbound_requests ENABLE ROW LEVEL SECURITY;
