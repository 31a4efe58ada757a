-- Destroying a deleted tenant's data. DeleteTenant only marks the tenant deleted (its
-- credentials stop at once); a background job then deletes its rows, table by table, inside
-- the tenant's own row-level-security scope, and records when it finished. The tenant row
-- itself stays, so the deletion remains on record.

ALTER TABLE tenants ADD COLUMN data_deleted_at timestamptz;

CREATE FUNCTION codexcontinue_tenants_awaiting_deletion(p_limit integer)
    RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT id FROM public.tenants
        WHERE state = 'deleted' AND data_deleted_at IS NULL
        ORDER BY updated_at
        LIMIT p_limit
    $$;
REVOKE ALL ON FUNCTION codexcontinue_tenants_awaiting_deletion(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_tenants_awaiting_deletion(integer) TO codexcontinue_app;
