-- PassItOn bridge schema, version 0006: on-call overrides, made in the console or with
-- `passiton-monitoring oncall override add|swap` and applied on top of the rotations of
-- ONCALL_CONFIG (bridge/oncall/schedule.py). schedule_id, person_id and replaces are the ids of
-- the on-call file (no foreign keys: the file is not in the database). replaces NULL: person_id
-- is on call in addition for the span; otherwise person_id covers replaces' time in it.
CREATE TABLE IF NOT EXISTS oncall_overrides (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    replaces TEXT,
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason TEXT NOT NULL DEFAULT '',
    CONSTRAINT oncall_overrides_span CHECK (ends_at > starts_at),
    CONSTRAINT oncall_overrides_not_self CHECK (replaces IS NULL OR replaces <> person_id)
);
CREATE INDEX IF NOT EXISTS oncall_overrides_span_idx ON oncall_overrides (ends_at, starts_at);

ALTER TABLE oncall_overrides ENABLE ROW LEVEL SECURITY;
