-- The server's own role cannot delete audit events the retention policy still covers.
--
-- Before: the server's role could shorten a tenant's retention (it may update `tenants`),
-- insert a retention checkpoint of its own (nothing in the database checks a signature),
-- or append an event dated long ago, and then have codexcontinue_audit_purge() delete
-- the recent events in front of it. Now:
--   * a platform floor under every tenant's retention lives in a table the server's role
--     can neither write nor read (`codexcontinue migrate` sets it from
--     `audit.min_retention_days`; six years until then), and the purge keeps events for
--     the longer of the tenant's retention and the floor;
--   * the purge refuses unless every event it would delete, not only the last, is older
--     than that: one backdated event cannot carry newer ones with it.
-- A forged retention checkpoint can then remove only what retention would remove anyway,
-- and `audit verify` still reports its signature as invalid.

CREATE TABLE audit_retention_floor (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    days     integer NOT NULL CHECK (days BETWEEN 1 AND 36525)
);
INSERT INTO audit_retention_floor (days) VALUES (2192);
REVOKE ALL ON audit_retention_floor FROM PUBLIC;

-- The floor in force (for the retention job's search of expired events).
CREATE FUNCTION codexcontinue_audit_retention_floor() RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT days FROM public.audit_retention_floor $$;
REVOKE ALL ON FUNCTION codexcontinue_audit_retention_floor() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_audit_retention_floor() TO codexcontinue_app;

CREATE OR REPLACE FUNCTION codexcontinue_audit_purge(p_through bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_tenant  uuid := codexcontinue_current_tenant();
    v_days    integer;
    v_deleted bigint;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'audit purge needs a tenant scope';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_checkpoints
                   WHERE tenant_id = v_tenant AND seq = p_through AND kind = 'retention') THEN
        RAISE EXCEPTION 'no retention checkpoint at seq %', p_through;
    END IF;
    SELECT greatest(coalesce(max(audit_retention_days), 2192),
                    (SELECT days FROM audit_retention_floor))
        INTO v_days FROM tenants WHERE id = v_tenant;
    IF EXISTS (SELECT 1 FROM audit_events
               WHERE tenant_id = v_tenant AND seq <= p_through
                 AND occurred_at >= now() - make_interval(days => v_days)) THEN
        RAISE EXCEPTION 'events through seq % are within the retention period', p_through;
    END IF;
    PERFORM set_config('codexcontinue.audit_retention', 'on', true);
    DELETE FROM audit_events WHERE tenant_id = v_tenant AND seq <= p_through;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    DELETE FROM audit_checkpoints WHERE tenant_id = v_tenant AND seq < p_through;
    PERFORM set_config('codexcontinue.audit_retention', 'off', true);
    RETURN v_deleted;
END
$$;
