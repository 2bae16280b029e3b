-- Migration 2 of the ML kernel's PostgreSQL store (migration 1 is
-- contracts/ml/ml_database_schema.sql): what the kernel keeps beyond the contract types.
BEGIN;
-- The governance validation of each plan and the approval holding it.
ALTER TABLE mlt_plans ADD COLUMN IF NOT EXISTS validation_id text;
ALTER TABLE mlt_plans ADD COLUMN IF NOT EXISTS approval_id text;
CREATE UNIQUE INDEX IF NOT EXISTS mlt_plans_approval_idx ON mlt_plans (approval_id);
-- Open insight conditions (drift:<target>:<metric> -> the insight raised for it).
CREATE TABLE IF NOT EXISTS mlt_alerts (
    key        text    PRIMARY KEY,
    insight_id mlt_uid NOT NULL
);
-- The current MLT and governance states.
CREATE TABLE IF NOT EXISTS mlt_state (
    name     text  PRIMARY KEY CHECK (name IN ('mlt', 'governance')),
    document jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object')
);
-- Answers remembered under an Idempotency-Key.
CREATE TABLE IF NOT EXISTS mlt_idempotency (
    key    text  PRIMARY KEY,
    answer jsonb NOT NULL
);
COMMIT;
