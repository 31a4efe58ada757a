-- Model aliases of a tenant (AdminService.SetModelRoute): an alias such as "default",
-- "fast" or "private" names an ordered list of (provider, model) targets. A call tries
-- them in order, retrying retryable failures, and falls back to the next. A private_only
-- alias may name only providers on the tenant's premises.

CREATE TABLE model_routes (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    alias        text NOT NULL CHECK (alias ~ '^[a-z][a-z0-9_-]{0,62}$'),
    targets      jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'array'),
    private_only boolean NOT NULL DEFAULT false,
    timeout_ms   integer NOT NULL DEFAULT 0 CHECK (timeout_ms BETWEEN 0 AND 600000),
    max_retries  integer NOT NULL DEFAULT 0 CHECK (max_retries BETWEEN 0 AND 5),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, alias)
);
CALL codexcontinue_isolate_by_tenant('model_routes');
GRANT SELECT, INSERT, UPDATE, DELETE ON model_routes TO codexcontinue_app;
