-- Passes that repeat on every replica (tenant data deletion, audit checkpoints, audit
-- retention) run on one replica at a time: before a pass, a replica claims the job's
-- lease for one interval. The replica holding it renews it at each pass; another takes it
-- over only once it has lapsed (its holder stopped). A table row rather than an advisory
-- lock, so it holds through a transaction-mode connection pooler. Platform data: no
-- tenant's, no RLS.

CREATE TABLE periodic_leases (
    job        text PRIMARY KEY CHECK (char_length(job) BETWEEN 1 AND 64),
    holder     uuid NOT NULL,
    expires_at timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON periodic_leases TO codexcontinue_app;
