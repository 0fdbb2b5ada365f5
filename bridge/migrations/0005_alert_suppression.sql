-- PassItOn bridge schema, version 0005: what Alertmanager knows about each alert instance,
-- written by the reconciler (bridge/reconcile.py) from Alertmanager's API.
-- One row per alert instance (fingerprint, starts_at), like the acknowledgements: silenced by
-- which silences ([{"id": ..., "ends_at": ...}]), inhibited by which alerts
-- ([{"fingerprint": ..., "alertname": ...}]), both empty while it is active; and, when the
-- reconciler resolved it because no Alertmanager had it any more, why and when
-- ('vanished', or 'resolved while silenced': Alertmanager sends no resolve for those).
CREATE TABLE IF NOT EXISTS alert_suppression (
    fingerprint TEXT NOT NULL,
    starts_at TIMESTAMPTZ NOT NULL,
    alert_table TEXT NOT NULL,
    silenced_by JSONB NOT NULL DEFAULT '[]'::jsonb,
    inhibited_by JSONB NOT NULL DEFAULT '[]'::jsonb,
    seen_at TIMESTAMPTZ NOT NULL,
    resolved_reason TEXT CHECK (resolved_reason IN ('vanished', 'resolved while silenced')),
    resolved_at TIMESTAMPTZ,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX IF NOT EXISTS alert_suppression_seen_idx ON alert_suppression (seen_at);

ALTER TABLE alert_suppression ENABLE ROW LEVEL SECURITY;
