-- Custom permissions a tenant grants to roles (built-in role grants live in the server's
-- code). Every replica keeps all of them in its policy engine: it loads them at start
-- through codexcontinue_all_role_policies() and reloads one tenant's when another replica
-- announces a change.

CREATE TABLE role_policies (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    role       text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_-]{0,62}$'),
    object     text NOT NULL CHECK (object ~ '^([a-z][a-z_]{0,62}|\*)$'),
    action     text NOT NULL CHECK (action ~ '^([a-z][a-z_]{0,62}|\*)$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, role, object, action)
);
CALL codexcontinue_isolate_by_tenant('role_policies');
GRANT SELECT, INSERT, DELETE ON role_policies TO codexcontinue_app;

CREATE FUNCTION codexcontinue_all_role_policies()
    RETURNS TABLE (tenant_id uuid, role text, object text, action text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT tenant_id, role, object, action FROM public.role_policies $$;
REVOKE ALL ON FUNCTION codexcontinue_all_role_policies() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_all_role_policies() TO codexcontinue_app;
