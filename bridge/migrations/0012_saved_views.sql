-- The console's saved views (issue 21, triage at scale): per user, a name and the Now page's
-- filter (Alertmanager matchers, as typed in its filter bar). Idempotent, like every migration
-- here.

CREATE TABLE IF NOT EXISTS console_saved_views (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (username, name)
);

ALTER TABLE console_saved_views ENABLE ROW LEVEL SECURITY;
