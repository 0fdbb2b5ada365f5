-- Personal API tokens (issue 21): `token create NAME --user USER` prints `pio_…` once; only its
-- SHA-256 is kept. A token is limited to its role (at most its user's) and organizations
-- (within its user's; NULL: every one). Revoking sets revoked_at; the row stays for the audit.
-- Idempotent, like every migration here.

CREATE TABLE IF NOT EXISTS api_tokens (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    organizations TEXT[],
    -- SHA-256 of the whole token, hex: the token is 32 random bytes, so no slow hash is needed
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
-- one live token per (user, name); a revoked one frees its name
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_live_name_idx ON api_tokens (username, name)
    WHERE revoked_at IS NULL;

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
