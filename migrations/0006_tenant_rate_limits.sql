-- Per-tenant rate limits set by platform admins, overriding the server's configured
-- defaults (NULL: use the defaults). Every replica keeps them in memory: loaded at start
-- through codexcontinue_all_tenant_rate_limits() and reloaded when announced.

ALTER TABLE tenants ADD COLUMN rate_limits jsonb
    CHECK (rate_limits IS NULL OR jsonb_typeof(rate_limits) = 'object');

CREATE FUNCTION codexcontinue_all_tenant_rate_limits()
    RETURNS TABLE (tenant_id uuid, rate_limits jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT id, rate_limits FROM public.tenants WHERE rate_limits IS NOT NULL $$;
REVOKE ALL ON FUNCTION codexcontinue_all_tenant_rate_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_all_tenant_rate_limits() TO codexcontinue_app;
