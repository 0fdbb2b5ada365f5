-- PassItOn bridge schema, version 0002: the alert console.
-- Console users (argon2 hashes), acknowledgements, the audit trail of every console action,
-- which alerts each outbox delivery carries (filled by a trigger, so the webhook path is
-- unchanged), and the indexes the console's pages read through.

CREATE TABLE IF NOT EXISTS console_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    -- bumped by logout and password changes: every session cookie issued before is void
    session_epoch INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One acknowledgement per alert instance (fingerprint, starts_at): a re-fire is a new instance.
CREATE TABLE IF NOT EXISTS alert_acknowledgements (
    fingerprint TEXT NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    alert_table TEXT NOT NULL,
    severity TEXT NOT NULL,
    username TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS alert_acknowledgements_created_idx ON alert_acknowledgements (created_at);

CREATE TABLE IF NOT EXISTS console_audit (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    fingerprint TEXT,
    starts_at TIMESTAMPTZ,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS console_audit_alert_idx ON console_audit (fingerprint, starts_at);
CREATE INDEX IF NOT EXISTS console_audit_at_idx ON console_audit USING brin (at);

CREATE TABLE IF NOT EXISTS delivery_alerts (
    fingerprint TEXT NOT NULL,
    delivery_id BIGINT NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    PRIMARY KEY (fingerprint, delivery_id)
);
CREATE INDEX IF NOT EXISTS delivery_alerts_delivery_idx ON delivery_alerts (delivery_id);

CREATE OR REPLACE FUNCTION passiton_link_delivery_alerts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO public.delivery_alerts (fingerprint, delivery_id)
    SELECT DISTINCT a->>'fingerprint', n.id
    FROM new_rows n, jsonb_array_elements(n.message->'alerts') a
    WHERE a->>'fingerprint' IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS alert_deliveries_link ON alert_deliveries;
CREATE TRIGGER alert_deliveries_link AFTER INSERT ON alert_deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION passiton_link_delivery_alerts();

-- Every attempt's outcome, for the alert's timeline: written by a trigger when a delivery is
-- sent, scheduled again (with its error), dead-lettered, or put back by the console.
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('sent', 'retry', 'dead', 'requeued')),
    error TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery_idx ON delivery_attempts (delivery_id);

CREATE OR REPLACE FUNCTION passiton_record_delivery_attempt() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO public.delivery_attempts (delivery_id, attempt, result, error, at)
    VALUES (
        NEW.id,
        NEW.attempts,
        CASE WHEN NEW.state = 'sent' THEN 'sent'
             WHEN NEW.state = 'dead' THEN 'dead'
             WHEN OLD.state = 'dead' THEN 'requeued'
             ELSE 'retry' END,
        CASE WHEN NEW.state = 'sent' THEN NULL ELSE NEW.last_error END,
        COALESCE(NEW.finished_at, clock_timestamp())
    );
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS alert_deliveries_attempt ON alert_deliveries;
CREATE TRIGGER alert_deliveries_attempt AFTER UPDATE ON alert_deliveries
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.next_attempt_at IS DISTINCT FROM NEW.next_attempt_at)
    EXECUTE FUNCTION passiton_record_delivery_attempt();

-- History (keyset on starts_at, id), the firing list and per-name review.
CREATE INDEX IF NOT EXISTS payment_alerts_starts_idx ON payment_alerts (starts_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS payment_alerts_firing_idx ON payment_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS payment_alerts_alertname_idx ON payment_alerts (alertname, starts_at DESC);
CREATE INDEX IF NOT EXISTS widget_alerts_starts_idx ON widget_alerts (starts_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS widget_alerts_firing_idx ON widget_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS widget_alerts_alertname_idx ON widget_alerts (alertname, starts_at DESC);
CREATE INDEX IF NOT EXISTS traffic_alerts_starts_idx ON traffic_alerts (starts_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS traffic_alerts_firing_idx ON traffic_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS traffic_alerts_alertname_idx ON traffic_alerts (alertname, starts_at DESC);
CREATE INDEX IF NOT EXISTS dashboard_alerts_starts_idx ON dashboard_alerts (starts_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS dashboard_alerts_firing_idx ON dashboard_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS dashboard_alerts_alertname_idx ON dashboard_alerts (alertname, starts_at DESC);
CREATE INDEX IF NOT EXISTS system_alerts_starts_idx ON system_alerts (starts_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS system_alerts_firing_idx ON system_alerts (starts_at) WHERE status = 'firing';
CREATE INDEX IF NOT EXISTS system_alerts_alertname_idx ON system_alerts (alertname, starts_at DESC);

-- The history's text search: trigram indexes where pg_trgm can be installed (it can on Debian's
-- PostgreSQL and on Supabase); without them the search still works, by scanning.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
            EXECUTE 'CREATE INDEX IF NOT EXISTS payment_alerts_search_idx ON payment_alerts USING gin ((summary || '' '' || alertname || '' '' || coalesce(organization_id, '''')) gin_trgm_ops)';
            EXECUTE 'CREATE INDEX IF NOT EXISTS widget_alerts_search_idx ON widget_alerts USING gin ((summary || '' '' || alertname || '' '' || coalesce(organization_id, '''')) gin_trgm_ops)';
            EXECUTE 'CREATE INDEX IF NOT EXISTS traffic_alerts_search_idx ON traffic_alerts USING gin ((summary || '' '' || alertname || '' '' || coalesce(organization_id, '''')) gin_trgm_ops)';
            EXECUTE 'CREATE INDEX IF NOT EXISTS dashboard_alerts_search_idx ON dashboard_alerts USING gin ((summary || '' '' || alertname || '' '' || coalesce(organization_id, '''')) gin_trgm_ops)';
            EXECUTE 'CREATE INDEX IF NOT EXISTS system_alerts_search_idx ON system_alerts USING gin ((summary || '' '' || alertname || '' '' || coalesce(organization_id, '''')) gin_trgm_ops)';
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm not installed (no privilege): history search scans';
        END;
    END IF;
END;
$$;

ALTER TABLE console_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_acknowledgements ENABLE ROW LEVEL SECURITY;
ALTER TABLE console_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_attempts ENABLE ROW LEVEL SECURITY;
