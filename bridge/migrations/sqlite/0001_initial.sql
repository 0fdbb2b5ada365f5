-- PassItOn bridge schema for SQLite, version 0001 (mirrors postgres/0001_initial.sql).
-- Times are ISO-8601 UTC text with microseconds ('2024-01-01T00:00:00.000000Z'), which sorts correctly;
-- JSON columns are JSON text.

CREATE TABLE IF NOT EXISTS payment_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '{}',
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TEXT,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS payment_alerts_received_at_idx ON payment_alerts (received_at);
CREATE INDEX IF NOT EXISTS payment_alerts_organization_idx ON payment_alerts (organization_id, starts_at);

CREATE TABLE IF NOT EXISTS widget_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '{}',
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TEXT,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS widget_alerts_received_at_idx ON widget_alerts (received_at);
CREATE INDEX IF NOT EXISTS widget_alerts_organization_idx ON widget_alerts (organization_id, starts_at);

CREATE TABLE IF NOT EXISTS traffic_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '{}',
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TEXT,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS traffic_alerts_received_at_idx ON traffic_alerts (received_at);
CREATE INDEX IF NOT EXISTS traffic_alerts_organization_idx ON traffic_alerts (organization_id, starts_at);

CREATE TABLE IF NOT EXISTS dashboard_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '{}',
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TEXT,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS dashboard_alerts_received_at_idx ON dashboard_alerts (received_at);
CREATE INDEX IF NOT EXISTS dashboard_alerts_organization_idx ON dashboard_alerts (organization_id, starts_at);

CREATE TABLE IF NOT EXISTS system_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    severity TEXT NOT NULL,
    organization_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '{}',
    generator_url TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- held back by the cooldown until then; Alertmanager's next repeat after it notifies
    held_until TEXT,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS system_alerts_received_at_idx ON system_alerts (received_at);
CREATE INDEX IF NOT EXISTS system_alerts_organization_idx ON system_alerts (organization_id, starts_at);

CREATE TABLE IF NOT EXISTS alert_configurations (
    organization_id TEXT NOT NULL,
    alertname TEXT NOT NULL,
    threshold REAL,
    enabled INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (organization_id, alertname)
);

CREATE TABLE IF NOT EXISTS notification_preferences (
    organization_id TEXT PRIMARY KEY,
    channels TEXT,
    recipients TEXT NOT NULL DEFAULT '{}',
    min_severity TEXT NOT NULL DEFAULT 'low' CHECK (min_severity IN ('critical', 'high', 'medium', 'low')),
    quiet_hours_start TEXT,
    quiet_hours_end TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS traffic_baselines (
    organization_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    human_count INTEGER NOT NULL DEFAULT 0,
    bot_count INTEGER NOT NULL DEFAULT 0,
    suspicious_count INTEGER NOT NULL DEFAULT 0,
    country_counts TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (organization_id, hour)
);

CREATE TABLE IF NOT EXISTS endpoint_metrics (
    route TEXT NOT NULL,
    method TEXT NOT NULL,
    hour TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0,
    p50_seconds REAL,
    p95_seconds REAL,
    p99_seconds REAL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (route, method, hour)
);

CREATE TABLE IF NOT EXISTS widget_analytics (
    organization_id TEXT NOT NULL,
    widget_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    load_count INTEGER NOT NULL DEFAULT 0,
    load_error_count INTEGER NOT NULL DEFAULT 0,
    render_error_count INTEGER NOT NULL DEFAULT 0,
    script_error_count INTEGER NOT NULL DEFAULT 0,
    p95_load_seconds REAL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (organization_id, widget_id, hour)
);

CREATE TABLE IF NOT EXISTS dashboard_metrics (
    metric TEXT NOT NULL,
    hour TEXT NOT NULL,
    value REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (metric, hour)
);

CREATE TABLE IF NOT EXISTS alert_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    status TEXT NOT NULL,
    alert_count INTEGER NOT NULL,
    new_event_count INTEGER NOT NULL,
    delivery_count INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_notifications_received_at_idx ON alert_notifications (received_at);

CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    group_key TEXT NOT NULL,
    message TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    finished_at TEXT
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
    window_started_at TEXT NOT NULL,
    cycles INTEGER NOT NULL DEFAULT 0,
    flapping INTEGER NOT NULL DEFAULT 0,
    last_event_at TEXT NOT NULL,
    last_alert TEXT,
    channels TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alert_fatigue_flapping_idx ON alert_fatigue (last_event_at) WHERE flapping;

CREATE TABLE IF NOT EXISTS bridge_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO bridge_state (key, value) VALUES ('config_version', '0') ON CONFLICT DO NOTHING;

CREATE TRIGGER IF NOT EXISTS alert_configurations_insert_changed AFTER INSERT ON alert_configurations
BEGIN
    UPDATE bridge_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version';
END;

CREATE TRIGGER IF NOT EXISTS alert_configurations_update_changed AFTER UPDATE ON alert_configurations
BEGIN
    UPDATE bridge_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version';
END;

CREATE TRIGGER IF NOT EXISTS alert_configurations_delete_changed AFTER DELETE ON alert_configurations
BEGIN
    UPDATE bridge_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version';
END;

CREATE TRIGGER IF NOT EXISTS notification_preferences_insert_changed AFTER INSERT ON notification_preferences
BEGIN
    UPDATE bridge_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version';
END;

CREATE TRIGGER IF NOT EXISTS notification_preferences_update_changed AFTER UPDATE ON notification_preferences
BEGIN
    UPDATE bridge_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version';
END;

CREATE TRIGGER IF NOT EXISTS notification_preferences_delete_changed AFTER DELETE ON notification_preferences
BEGIN
    UPDATE bridge_state SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version';
END;
