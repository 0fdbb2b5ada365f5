-- When a delivery was first actually tried (NULL until its first failed send). The retry
-- policy's maximum age counts from here, not from created_at: a delivery held back by quiet
-- hours or a rate limit keeps its retries.
ALTER TABLE alert_deliveries ADD COLUMN IF NOT EXISTS first_attempt_at TIMESTAMPTZ;
