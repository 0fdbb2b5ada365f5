-- Console sign-in with OpenID Connect (issue 21): a user the provider signed in is bound to
-- the provider's (issuer, subject) and has no password (password_hash ''); their role and
-- organizations are set from the ID token's claims at every sign-in. `user add` (a local
-- password) unbinds the name. Idempotent, like every migration here.

ALTER TABLE console_users ADD COLUMN IF NOT EXISTS oidc_issuer TEXT;
ALTER TABLE console_users ADD COLUMN IF NOT EXISTS oidc_subject TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS console_users_oidc_idx ON console_users (oidc_issuer, oidc_subject)
    WHERE oidc_subject IS NOT NULL;
