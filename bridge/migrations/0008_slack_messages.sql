-- Slack by the Web API: an incident's one message (the parent its changes are threaded under).
-- The row is created, and the message posted, while the row is locked, so two workers or
-- replicas never post two parents for one incident. The incident's slack_thread_ts (0004) is
-- set too. Idempotent, like every migration here.

CREATE TABLE IF NOT EXISTS slack_messages (
    incident_id BIGINT PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    -- the channel id Slack answered with and the message's ts; NULL: not posted yet
    channel TEXT,
    ts TEXT,
    -- the parent's alert blocks, kept for updates in place, and the severity they show
    body JSONB,
    body_severity TEXT,
    -- when a later message (a resolve) first found no parent: after a while it becomes it
    waiting_since TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS slack_channel TEXT;

ALTER TABLE slack_messages ENABLE ROW LEVEL SECURITY;
