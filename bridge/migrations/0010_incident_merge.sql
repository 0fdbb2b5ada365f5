-- Incidents merge when their cause arrives late (issue 19): ApiErrorRatioHigh and
-- PaymentFailureRatioHigh, both effects of the database, can open two incidents before
-- DatabaseErrorsHigh relates them. The alert that relates them makes them one: the survivor
-- carries on, the others end (status resolved) with merged_into naming it; their alerts'
-- incident_id names the survivor, their timelines say merged_into and the survivor's merged.
-- Idempotent, like every migration here; incidents already has row level security (0004).

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS merged_into BIGINT REFERENCES incidents (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS incidents_merged_into_idx ON incidents (merged_into) WHERE merged_into IS NOT NULL;
