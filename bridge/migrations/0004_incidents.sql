-- Incidents: every stored alert belongs to one incident; related alerts (the same alert across
-- organizations, or a cause and its effects in bridge/topology.yml) join one. The incident is
-- what is paged: once when it opens, again only when its severity rises or it resolves.
-- Idempotent, like every migration here.

CREATE TABLE IF NOT EXISTS incidents (
    id BIGSERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    status TEXT NOT NULL DEFAULT 'firing' CHECK (status IN ('firing', 'acknowledged', 'resolved')),
    -- the alert name of the cause: the member furthest upstream in the causal map, else the first
    probable_cause TEXT NOT NULL,
    -- what the incident covers: its alerts' names, their organizations, their common labels
    alertnames TEXT[] NOT NULL DEFAULT '{}',
    organizations TEXT[] NOT NULL DEFAULT '{}',
    labels JSONB NOT NULL DEFAULT '{}'::jsonb,
    alert_count INTEGER NOT NULL DEFAULT 0,
    opened_at TIMESTAMPTZ NOT NULL,
    -- when an alert last joined (or fired in) it: related alerts join within the window after
    last_alert_at TIMESTAMPTZ NOT NULL,
    acknowledged_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    -- paging: the highest severity paged so far (NULL: nobody paged yet), the Slack thread
    paged_severity TEXT CHECK (paged_severity IN ('critical', 'high', 'medium', 'low')),
    slack_thread_ts TEXT
);
CREATE INDEX IF NOT EXISTS incidents_open_idx ON incidents (last_alert_at) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS incidents_opened_at_idx ON incidents USING brin (opened_at);

-- The incident's timeline: opened, joined, severity raised, paged, resolved, acknowledged.
CREATE TABLE IF NOT EXISTS incident_events (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS incident_events_incident_idx ON incident_events (incident_id, at);

ALTER TABLE payment_alerts ADD COLUMN IF NOT EXISTS incident_id BIGINT REFERENCES incidents (id) ON DELETE SET NULL;
ALTER TABLE widget_alerts ADD COLUMN IF NOT EXISTS incident_id BIGINT REFERENCES incidents (id) ON DELETE SET NULL;
ALTER TABLE traffic_alerts ADD COLUMN IF NOT EXISTS incident_id BIGINT REFERENCES incidents (id) ON DELETE SET NULL;
ALTER TABLE dashboard_alerts ADD COLUMN IF NOT EXISTS incident_id BIGINT REFERENCES incidents (id) ON DELETE SET NULL;
ALTER TABLE system_alerts ADD COLUMN IF NOT EXISTS incident_id BIGINT REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS payment_alerts_incident_idx ON payment_alerts (incident_id);
CREATE INDEX IF NOT EXISTS widget_alerts_incident_idx ON widget_alerts (incident_id);
CREATE INDEX IF NOT EXISTS traffic_alerts_incident_idx ON traffic_alerts (incident_id);
CREATE INDEX IF NOT EXISTS dashboard_alerts_incident_idx ON dashboard_alerts (incident_id);
CREATE INDEX IF NOT EXISTS system_alerts_incident_idx ON system_alerts (incident_id);

ALTER TABLE incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incident_events ENABLE ROW LEVEL SECURITY;
