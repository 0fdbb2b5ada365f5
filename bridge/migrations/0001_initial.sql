-- PassItOn bridge schema, version 0001. Idempotent: safe to apply again, usable as a Supabase migration.
-- Row level security is enabled on every table; the bridge connects as the table owner (or the
-- service role), which bypasses it, while anon/authenticated clients see nothing without a policy.
-- received_at grows with insertion order, so BRIN indexes serve the retention deletes at a
-- fraction of a B-tree's cost on every insert.

CREATE TABLE IF NOT EXISTS payment_alerts (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    annotations JSONB NOT NULL DEFAULT '{}'::jsonb,
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TIMESTAMPTZ,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS payment_alerts_received_at_idx ON payment_alerts USING brin (received_at);
CREATE INDEX IF NOT EXISTS payment_alerts_organization_idx ON payment_alerts (organization_id, starts_at DESC);

CREATE TABLE IF NOT EXISTS widget_alerts (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    annotations JSONB NOT NULL DEFAULT '{}'::jsonb,
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TIMESTAMPTZ,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS widget_alerts_received_at_idx ON widget_alerts USING brin (received_at);
CREATE INDEX IF NOT EXISTS widget_alerts_organization_idx ON widget_alerts (organization_id, starts_at DESC);

CREATE TABLE IF NOT EXISTS traffic_alerts (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    annotations JSONB NOT NULL DEFAULT '{}'::jsonb,
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TIMESTAMPTZ,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS traffic_alerts_received_at_idx ON traffic_alerts USING brin (received_at);
CREATE INDEX IF NOT EXISTS traffic_alerts_organization_idx ON traffic_alerts (organization_id, starts_at DESC);

CREATE TABLE IF NOT EXISTS dashboard_alerts (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    annotations JSONB NOT NULL DEFAULT '{}'::jsonb,
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TIMESTAMPTZ,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS dashboard_alerts_received_at_idx ON dashboard_alerts USING brin (received_at);
CREATE INDEX IF NOT EXISTS dashboard_alerts_organization_idx ON dashboard_alerts (organization_id, starts_at DESC);

CREATE TABLE IF NOT EXISTS system_alerts (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    annotations JSONB NOT NULL DEFAULT '{}'::jsonb,
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ,
    received_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TIMESTAMPTZ,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS system_alerts_received_at_idx ON system_alerts USING brin (received_at);
CREATE INDEX IF NOT EXISTS system_alerts_organization_idx ON system_alerts (organization_id, starts_at DESC);

CREATE TABLE IF NOT EXISTS alert_configurations (
    organization_id TEXT NOT NULL,
    alertname TEXT NOT NULL,
    threshold DOUBLE PRECISION,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, alertname)
);

-- channels: NULL (severity defaults), a JSON array (for every severity) or an object
-- {"critical": [...], "high": [...]}; recipients: {"email": [...], "sms": [...]}.
-- quiet hours hold back non-critical notifications until quiet_hours_end, local to timezone.
CREATE TABLE IF NOT EXISTS notification_preferences (
    organization_id TEXT PRIMARY KEY,
    channels JSONB,
    recipients JSONB NOT NULL DEFAULT '{}'::jsonb,
    min_severity TEXT NOT NULL DEFAULT 'low' CHECK (min_severity IN ('critical', 'high', 'medium', 'low')),
    quiet_hours_start TIME,
    quiet_hours_end TIME,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS traffic_baselines (
    organization_id TEXT NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    request_count BIGINT NOT NULL DEFAULT 0,
    human_count BIGINT NOT NULL DEFAULT 0,
    bot_count BIGINT NOT NULL DEFAULT 0,
    suspicious_count BIGINT NOT NULL DEFAULT 0,
    country_counts JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, hour)
);

CREATE TABLE IF NOT EXISTS endpoint_metrics (
    route TEXT NOT NULL,
    method TEXT NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    request_count BIGINT NOT NULL DEFAULT 0,
    error_count BIGINT NOT NULL DEFAULT 0,
    p50_seconds DOUBLE PRECISION,
    p95_seconds DOUBLE PRECISION,
    p99_seconds DOUBLE PRECISION,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (route, method, hour)
);

CREATE TABLE IF NOT EXISTS widget_analytics (
    organization_id TEXT NOT NULL,
    widget_id TEXT NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    load_count BIGINT NOT NULL DEFAULT 0,
    load_error_count BIGINT NOT NULL DEFAULT 0,
    render_error_count BIGINT NOT NULL DEFAULT 0,
    script_error_count BIGINT NOT NULL DEFAULT 0,
    p95_load_seconds DOUBLE PRECISION,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, widget_id, hour)
);

CREATE TABLE IF NOT EXISTS dashboard_metrics (
    metric TEXT NOT NULL,
    hour TIMESTAMPTZ NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, hour)
);

-- The bridge's own tables: notifications received, the delivery outbox, alert-fatigue state
-- and small shared state (dead man's switch). An alert's identity is (fingerprint, starts_at),
-- unique in its table: that key is also what makes a repeated notification change nothing.
CREATE TABLE IF NOT EXISTS alert_notifications (
    id BIGSERIAL PRIMARY KEY,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    status TEXT NOT NULL,
    alert_count INTEGER NOT NULL,
    new_event_count INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_notifications_received_at_idx ON alert_notifications USING brin (received_at);

CREATE TABLE IF NOT EXISTS alert_deliveries (
    id BIGSERIAL PRIMARY KEY,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    message JSONB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    finished_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due_idx
    ON alert_deliveries (channel, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS alert_deliveries_finished_idx
    ON alert_deliveries (finished_at) WHERE state <> 'pending';

-- Alert fatigue per alert (its labels without severity): flapping cycles in the current
-- window, and per channel the last notification sent: {"slack": [sent_at_epoch, severity_rank,
-- "starts_at", "fingerprint"]}. Rows are written only when something changed.
CREATE TABLE IF NOT EXISTS alert_fatigue (
    alert_key TEXT PRIMARY KEY,
    window_started_at TIMESTAMPTZ NOT NULL,
    cycles INTEGER NOT NULL DEFAULT 0,
    flapping BOOLEAN NOT NULL DEFAULT FALSE,
    last_event_at TIMESTAMPTZ NOT NULL,
    last_alert JSONB,
    channels JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS alert_fatigue_flapping_idx ON alert_fatigue (last_event_at) WHERE flapping;

CREATE TABLE IF NOT EXISTS bridge_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every change to the routing tables bumps config_version; bridges poll it and reload.
INSERT INTO bridge_state (key, value) VALUES ('config_version', '0') ON CONFLICT DO NOTHING;

-- SECURITY DEFINER: an organization editing its preferences through Supabase's API (a role that
-- row level security keeps away from bridge_state) must still bump the version.
CREATE OR REPLACE FUNCTION passiton_bump_config_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE public.bridge_state SET value = (value::bigint + 1)::text, updated_at = now()
    WHERE key = 'config_version';
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS alert_configurations_changed ON alert_configurations;
CREATE TRIGGER alert_configurations_changed AFTER INSERT OR UPDATE OR DELETE ON alert_configurations
    FOR EACH STATEMENT EXECUTE FUNCTION passiton_bump_config_version();
DROP TRIGGER IF EXISTS notification_preferences_changed ON notification_preferences;
CREATE TRIGGER notification_preferences_changed AFTER INSERT OR UPDATE OR DELETE ON notification_preferences
    FOR EACH STATEMENT EXECUTE FUNCTION passiton_bump_config_version();

ALTER TABLE payment_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE widget_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE traffic_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE dashboard_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_configurations ENABLE ROW LEVEL SECURITY;
ALTER TABLE notification_preferences ENABLE ROW LEVEL SECURITY;
ALTER TABLE traffic_baselines ENABLE ROW LEVEL SECURITY;
ALTER TABLE endpoint_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE widget_analytics ENABLE ROW LEVEL SECURITY;
ALTER TABLE dashboard_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_fatigue ENABLE ROW LEVEL SECURITY;
ALTER TABLE bridge_state ENABLE ROW LEVEL SECURITY;
