-- PassItOn bridge schema, version 0002: the alert console (mirrors postgres/0002_console.sql).
-- Console users (argon2 hashes), acknowledgements, the audit trail of every console action,
-- which alerts each outbox delivery carries (filled by a trigger, so the webhook path is
-- unchanged), and the indexes the console's pages read through.

CREATE TABLE IF NOT EXISTS console_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    -- bumped by logout and password changes: every session cookie issued before is void
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One acknowledgement per alert instance (fingerprint, starts_at): a re-fire is a new instance.
CREATE TABLE IF NOT EXISTS alert_acknowledgements (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    alert_table TEXT NOT NULL,
    severity TEXT NOT NULL,
    username TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS alert_acknowledgements_created_idx ON alert_acknowledgements (created_at);

CREATE TABLE IF NOT EXISTS console_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    fingerprint TEXT,
    starts_at TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS console_audit_alert_idx ON console_audit (fingerprint, starts_at);
CREATE INDEX IF NOT EXISTS console_audit_at_idx ON console_audit (at);

CREATE TABLE IF NOT EXISTS delivery_alerts (
    fingerprint TEXT NOT NULL,
    delivery_id BIGINT NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    PRIMARY KEY (fingerprint, delivery_id)
);
CREATE INDEX IF NOT EXISTS delivery_alerts_delivery_idx ON delivery_alerts (delivery_id);

CREATE TRIGGER IF NOT EXISTS alert_deliveries_link AFTER INSERT ON alert_deliveries
BEGIN
    INSERT OR IGNORE INTO delivery_alerts (fingerprint, delivery_id)
    SELECT json_extract(a.value, '$.fingerprint'), NEW.id
    FROM json_each(NEW.message, '$.alerts') a
    WHERE json_extract(a.value, '$.fingerprint') IS NOT NULL;
END;

-- Every attempt's outcome, for the alert's timeline: written by a trigger when a delivery is
-- sent, scheduled again (with its error), dead-lettered, or put back by the console.
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id BIGINT NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('sent', 'retry', 'dead', 'requeued')),
    error TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery_idx ON delivery_attempts (delivery_id);

CREATE TRIGGER IF NOT EXISTS alert_deliveries_attempt AFTER UPDATE ON alert_deliveries
    WHEN OLD.state IS NOT NEW.state OR OLD.next_attempt_at IS NOT NEW.next_attempt_at
BEGIN
    INSERT INTO delivery_attempts (delivery_id, attempt, result, error, at)
    VALUES (
        NEW.id,
        NEW.attempts,
        CASE WHEN NEW.state = 'sent' THEN 'sent'
             WHEN NEW.state = 'dead' THEN 'dead'
             WHEN OLD.state = 'dead' THEN 'requeued'
             ELSE 'retry' END,
        CASE WHEN NEW.state = 'sent' THEN NULL ELSE NEW.last_error END,
        COALESCE(NEW.finished_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
END;

-- History (keyset on starts_at, id), the firing list and per-name review.
CREATE INDEX IF NOT EXISTS payment_alerts_starts_idx ON payment_alerts (starts_at, id);
CREATE INDEX IF NOT EXISTS payment_alerts_firing_idx ON payment_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS payment_alerts_alertname_idx ON payment_alerts (alertname, starts_at);
CREATE INDEX IF NOT EXISTS widget_alerts_starts_idx ON widget_alerts (starts_at, id);
CREATE INDEX IF NOT EXISTS widget_alerts_firing_idx ON widget_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS widget_alerts_alertname_idx ON widget_alerts (alertname, starts_at);
CREATE INDEX IF NOT EXISTS traffic_alerts_starts_idx ON traffic_alerts (starts_at, id);
CREATE INDEX IF NOT EXISTS traffic_alerts_firing_idx ON traffic_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS traffic_alerts_alertname_idx ON traffic_alerts (alertname, starts_at);
CREATE INDEX IF NOT EXISTS dashboard_alerts_starts_idx ON dashboard_alerts (starts_at, id);
CREATE INDEX IF NOT EXISTS dashboard_alerts_firing_idx ON dashboard_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS dashboard_alerts_alertname_idx ON dashboard_alerts (alertname, starts_at);
CREATE INDEX IF NOT EXISTS system_alerts_starts_idx ON system_alerts (starts_at, id);
CREATE INDEX IF NOT EXISTS system_alerts_firing_idx ON system_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS system_alerts_alertname_idx ON system_alerts (alertname, starts_at);
