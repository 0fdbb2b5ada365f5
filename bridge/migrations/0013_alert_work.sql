-- Alert work (issue 21): acknowledgements that expire, snoozes, assignees, and why an alert was
-- not delivered on a channel. Idempotent, like every migration here.

-- An acknowledgement with a chosen end (30m, 1h, 4h): the bridge's sweep moves the incident
-- back to firing then and restarts its escalation. NULL: none chosen (until resolved, or the
-- policy's ack_timeout, which the escalation row holds).
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS ack_expires_at TIMESTAMPTZ;
-- Snoozed: off the Now page, its pages and escalation steps held, until then (not acknowledged).
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS snoozed_until TIMESTAMPTZ;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS snoozed_by TEXT;
-- Who works on it (a console user's name); NULL: nobody.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS assignee TEXT;
CREATE INDEX IF NOT EXISTS incidents_ack_expires_idx ON incidents (ack_expires_at)
    WHERE ack_expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS incidents_snoozed_idx ON incidents (snoozed_until)
    WHERE snoozed_until IS NOT NULL;

-- An alert's acknowledgement may end too (then repeats notify again).
ALTER TABLE alert_acknowledgements ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;

-- Why an alert event reached nobody on a channel its severity would use, decided by the ingest
-- (plan_notification) where it is decided: min_severity, disabled, acknowledged, flapping,
-- incident (the incident was paged already), snoozed, no_channel, not_configured, oncall (the
-- escalation pages people instead), cooldown (until), quiet_hours (held until). channel '*':
-- every channel.
CREATE TABLE IF NOT EXISTS alert_skips (
    fingerprint TEXT NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    reason TEXT NOT NULL,
    until TIMESTAMPTZ,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (fingerprint, starts_at, status, channel)
);
CREATE INDEX IF NOT EXISTS alert_skips_at_idx ON alert_skips USING brin (at);

ALTER TABLE alert_skips ENABLE ROW LEVEL SECURITY;
