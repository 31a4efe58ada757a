-- Platform administration of tenants: listing every tenant and changing a tenant's state
-- cross tenant boundaries, so, like tenant creation, they go through functions that run as
-- the schema owner and do exactly that. The server calls them only for callers holding
-- the platform-admin role.

CREATE FUNCTION codexcontinue_list_tenants(p_after uuid, p_state text, p_limit integer)
    RETURNS SETOF public.tenants
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT * FROM public.tenants
        WHERE (p_after IS NULL OR id > p_after) AND (p_state IS NULL OR state = p_state)
        ORDER BY id
        LIMIT p_limit
    $$;

CREATE FUNCTION codexcontinue_get_tenant(p_id uuid)
    RETURNS SETOF public.tenants
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT * FROM public.tenants WHERE id = p_id $$;

-- A deleted tenant stays deleted.
CREATE FUNCTION codexcontinue_set_tenant_state(p_id uuid, p_state text)
    RETURNS SETOF public.tenants
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        UPDATE public.tenants SET state = p_state, updated_at = now()
        WHERE id = p_id AND state <> 'deleted'
        RETURNING *
    $$;

-- What happens to prompts with PHI/PII bound for external providers (enforced by the
-- privacy guard); redaction is the safe default for the settings this server targets.
ALTER TABLE tenants ADD COLUMN phi_policy text NOT NULL DEFAULT 'redact'
    CHECK (phi_policy IN ('allow', 'redact', 'refuse'));

REVOKE ALL ON FUNCTION codexcontinue_list_tenants(uuid, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION codexcontinue_get_tenant(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION codexcontinue_set_tenant_state(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_list_tenants(uuid, text, integer) TO codexcontinue_app;
GRANT EXECUTE ON FUNCTION codexcontinue_get_tenant(uuid) TO codexcontinue_app;
GRANT EXECUTE ON FUNCTION codexcontinue_set_tenant_state(uuid, text) TO codexcontinue_app;
