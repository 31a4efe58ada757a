-- Usage accounting and token budgets.
--
-- usage_events: one row per model call that produced a reply (tokens, cost from the
-- configured price table, latency), written in the transaction that stores the reply.
-- It outlives conversation deletion (it holds no content), so reports and budgets stay
-- right; it goes with the tenant. budgets: tokens allowed per UTC day or month for the
-- whole tenant (user_id nil) or one user, checked before every call.

CREATE TABLE usage_events (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL,
    user_id           uuid NOT NULL,
    model             text NOT NULL,
    prompt_tokens     bigint NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL CHECK (completion_tokens >= 0),
    cost_micros       bigint NOT NULL CHECK (cost_micros >= 0),
    latency_ms        integer NOT NULL CHECK (latency_ms >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX usage_events_time ON usage_events (tenant_id, created_at);
CREATE INDEX usage_events_user_time ON usage_events (tenant_id, user_id, created_at);
CALL codexcontinue_isolate_by_tenant('usage_events');
GRANT SELECT, INSERT, DELETE ON usage_events TO codexcontinue_app;

CREATE TABLE budgets (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    user_id     uuid NOT NULL,
    period      text NOT NULL CHECK (period IN ('day', 'month')),
    token_limit bigint NOT NULL CHECK (token_limit > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, period)
);
CALL codexcontinue_isolate_by_tenant('budgets');
GRANT SELECT, INSERT, UPDATE, DELETE ON budgets TO codexcontinue_app;
