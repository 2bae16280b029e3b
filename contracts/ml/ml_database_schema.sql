-- Grace ML contracts: PostgreSQL (15+) DDL of the MLT kernel's persistence.
--
-- Five tables, one per contract type of ml_schemas.json: mlt_experiences, mlt_insights,
-- mlt_plans, mlt_snapshots (governance and MLT snapshots), mlt_specialist_reports.
-- The columns the kernel queries on are real columns with CHECKs mirroring the JSON Schema
-- rules (UID, SemVer, Sha256 patterns, enums, ranges); the whole validated document is kept in
-- a JSONB column so the contract, not this DDL, owns the nested shape. Field names in JSONB are
-- the contract's. Idempotent: safe to run twice (IF NOT EXISTS / OR REPLACE).
--
-- Run: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f contracts/ml/ml_database_schema.sql

BEGIN;

-- Shared patterns as domains, so each rule is written once; looked up in the current schema
-- only, so the DDL can be applied in several schemas of one database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mlt_uid'
                   AND typnamespace = current_schema()::regnamespace) THEN
        CREATE DOMAIN mlt_uid AS text CHECK (VALUE ~ '^[a-z][a-z0-9_-]{4,64}$');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mlt_semver'
                   AND typnamespace = current_schema()::regnamespace) THEN
        CREATE DOMAIN mlt_semver AS text CHECK (VALUE ~ '^[0-9]+\.[0-9]+\.[0-9]+$');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mlt_sha256'
                   AND typnamespace = current_schema()::regnamespace) THEN
        CREATE DOMAIN mlt_sha256 AS text CHECK (VALUE ~ '^sha256:[a-f0-9]{64}$');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mlt_task'
                   AND typnamespace = current_schema()::regnamespace) THEN
        CREATE DOMAIN mlt_task AS text
            CHECK (VALUE IN ('classification', 'regression', 'clustering', 'dimred', 'rl'));
    END IF;
END
$$;

-- Experience: training/inference telemetry. Queried by (source, task) and by time.
CREATE TABLE IF NOT EXISTS mlt_experiences (
    experience_id      mlt_uid      PRIMARY KEY,
    source             text         NOT NULL
        CHECK (source IN ('training', 'inference', 'evaluation', 'monitoring', 'governance', 'comms')),
    task               mlt_task     NOT NULL,
    env                text         NOT NULL CHECK (env IN ('dev', 'staging', 'prod')),
    model_key          mlt_uid,
    ground_truth_lag_s double precision CHECK (ground_truth_lag_s >= 0),
    ts                 timestamptz  NOT NULL,
    document           jsonb        NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    ingested_at        timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mlt_experiences_source_task_idx ON mlt_experiences (source, task);
CREATE INDEX IF NOT EXISTS mlt_experiences_ts_idx ON mlt_experiences (ts);

-- Insight: findings with evidence. Queried by (type, scope), by time (GET /insights?since=)
-- and best-first by confidence.
CREATE TABLE IF NOT EXISTS mlt_insights (
    insight_id     mlt_uid      PRIMARY KEY,
    type           text         NOT NULL
        CHECK (type IN ('performance', 'drift', 'fairness', 'calibration', 'latency', 'stability', 'governance')),
    scope          text         NOT NULL
        CHECK (scope IN ('global', 'task', 'model', 'specialist', 'dataset')),
    target         mlt_uid,
    confidence     double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    recommendation text         NOT NULL
        CHECK (recommendation IN ('hpo', 'reweight_specialists', 'policy_delta', 'canary', 'rollback', 'none')),
    ts             timestamptz  NOT NULL,
    document       jsonb        NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    CHECK (scope = 'global' OR target IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS mlt_insights_type_scope_idx ON mlt_insights (type, scope);
CREATE INDEX IF NOT EXISTS mlt_insights_ts_idx ON mlt_insights (ts);
CREATE INDEX IF NOT EXISTS mlt_insights_confidence_idx ON mlt_insights (confidence DESC);

-- AdaptationPlan with its lifecycle status (GET /plans/{id}/status).
-- pending -> approved | rejected; approved -> applied. decided_at is set with the decision.
CREATE TABLE IF NOT EXISTS mlt_plans (
    plan_id     mlt_uid      PRIMARY KEY,
    status      text         NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'applied')),
    risk_level  text         NOT NULL CHECK (risk_level IN ('low', 'medium', 'high')),
    action_count integer     NOT NULL CHECK (action_count BETWEEN 1 AND 32),
    document    jsonb        NOT NULL CHECK (jsonb_typeof(document -> 'actions') = 'array'),
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    decided_at  timestamptz,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX IF NOT EXISTS mlt_plans_status_idx ON mlt_plans (status);

CREATE OR REPLACE FUNCTION mlt_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS mlt_plans_touch_updated_at ON mlt_plans;
CREATE TRIGGER mlt_plans_touch_updated_at
    BEFORE UPDATE ON mlt_plans
    FOR EACH ROW EXECUTE FUNCTION mlt_touch_updated_at();

-- Governance and MLT snapshots. state_hash is the sha256 of the canonical JSON of the state;
-- the kernel recomputes and compares it on restore. One row per snapshot id; a hash may repeat
-- only across kinds (identical state captured twice is recorded once per kind).
CREATE TABLE IF NOT EXISTS mlt_snapshots (
    snapshot_id mlt_uid      PRIMARY KEY,
    kind        text         NOT NULL CHECK (kind IN ('governance', 'mlt')),
    version     mlt_semver   NOT NULL,
    state_hash  mlt_sha256   NOT NULL,
    uri         text         CHECK (uri ~ '^[a-z][a-z0-9+.-]*://'),
    document    jsonb        NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    created_at  timestamptz  NOT NULL,
    UNIQUE (kind, state_hash)
);
CREATE INDEX IF NOT EXISTS mlt_snapshots_kind_created_idx ON mlt_snapshots (kind, created_at DESC);

-- SpecialistReport: model-selection output per specialist.
CREATE TABLE IF NOT EXISTS mlt_specialist_reports (
    report_id   mlt_uid      PRIMARY KEY,
    specialist  mlt_uid      NOT NULL,
    task        mlt_task     NOT NULL,
    version     mlt_semver,
    dataset_id  mlt_uid      NOT NULL,
    ts          timestamptz  NOT NULL,
    document    jsonb        NOT NULL CHECK (jsonb_typeof(document -> 'candidates') = 'array')
);
CREATE INDEX IF NOT EXISTS mlt_specialist_reports_specialist_idx ON mlt_specialist_reports (specialist);
CREATE INDEX IF NOT EXISTS mlt_specialist_reports_task_idx ON mlt_specialist_reports (task);
CREATE INDEX IF NOT EXISTS mlt_specialist_reports_ts_idx ON mlt_specialist_reports (ts);

COMMIT;
