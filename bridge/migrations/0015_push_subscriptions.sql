-- Web Push subscriptions (issue 21, the phone app): one row per browser (PushSubscription) a
-- console user turned notifications on in. The endpoint is the push service's URL for that
-- browser; p256dh and auth are its public key and authentication secret (base64url), what the
-- bridge encrypts each page to (RFC 8291). A push service answering 404/410 for an endpoint
-- deletes its row; other failures are kept for the console to show. Idempotent.

CREATE TABLE IF NOT EXISTS push_subscriptions (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    -- one row per browser: a browser re-subscribed by another user moves to that user
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    last_success_at TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ,
    last_failure TEXT
);
CREATE INDEX IF NOT EXISTS push_subscriptions_username_idx ON push_subscriptions (username);

ALTER TABLE push_subscriptions ENABLE ROW LEVEL SECURITY;
