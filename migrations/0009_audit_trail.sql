-- The audit trail: append-only, hash-chained per tenant.
--
-- Each event stores its position in its tenant's chain (seq, from 1) and
-- hash = SHA-256(previous event's hash || canonical encoding of the event), computed by the
-- server. audit_chain_heads holds each tenant's last (seq, hash); writers lock that row in
-- the transaction that appends, so concurrent writers of one tenant never fork the chain
-- while different tenants never wait for each other. Calls made without a tenant (refused
-- before authentication) are recorded in the platform chain, tenant 00000000-….
--
-- The server's role may only INSERT and SELECT events; a trigger refuses UPDATE and DELETE
-- even to the owner unless the session explicitly takes the retention path
-- (SET codexcontinue.audit_retention = 'on'), so edits cannot happen by accident.

CREATE TABLE audit_chain_heads (
    tenant_id uuid PRIMARY KEY,
    seq       bigint NOT NULL CHECK (seq >= 0),
    hash      bytea NOT NULL CHECK (octet_length(hash) = 32)
);
CALL codexcontinue_isolate_by_tenant('audit_chain_heads');

CREATE TABLE audit_events (
    tenant_id      uuid NOT NULL,
    seq            bigint NOT NULL CHECK (seq > 0),
    id             uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor_kind     text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'system', 'anonymous')),
    actor_id       text NOT NULL DEFAULT '',
    action         text NOT NULL,
    resource_type  text NOT NULL DEFAULT '',
    resource_id    text NOT NULL DEFAULT '',
    outcome        text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    status_code    integer NOT NULL,
    request_id     text NOT NULL DEFAULT '',
    client_address text NOT NULL DEFAULT '',
    user_agent     text NOT NULL DEFAULT '',
    phi            boolean NOT NULL DEFAULT false,
    details        jsonb NOT NULL DEFAULT '{}',
    hash           bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at);
CALL codexcontinue_isolate_by_tenant('audit_events');

CREATE FUNCTION codexcontinue_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF current_setting('codexcontinue.audit_retention', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'audit events are append-only';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION codexcontinue_audit_append_only();

GRANT SELECT, INSERT ON audit_events TO codexcontinue_app;
GRANT SELECT, INSERT, UPDATE ON audit_chain_heads TO codexcontinue_app;

-- Tenants whose chains exist (for `codexcontinue audit verify` across all tenants).
CREATE FUNCTION codexcontinue_audited_tenants()
    RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT tenant_id FROM public.audit_chain_heads ORDER BY tenant_id $$;
REVOKE ALL ON FUNCTION codexcontinue_audited_tenants() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_audited_tenants() TO codexcontinue_app;
