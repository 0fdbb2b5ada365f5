-- The console's incidents (issue 19): console users limited to some organizations, and the
-- incidents the Now page shows as resolved recently. Idempotent, like every migration here.

-- NULL: every organization. A list: the user sees only incidents touching these
-- organizations, and of them only these organizations' alerts.
ALTER TABLE console_users ADD COLUMN IF NOT EXISTS organizations TEXT[];

CREATE INDEX IF NOT EXISTS incidents_resolved_at_idx ON incidents (resolved_at)
    WHERE status = 'resolved';
