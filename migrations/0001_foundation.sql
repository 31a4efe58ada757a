-- Foundation: extensions, the application role, row-level security scaffolding, tenants,
-- users, role assignments and API keys.
--
-- Isolation model: every tenant-owned table has a tenant_id column and a FORCED row-level
-- security policy comparing it with the transaction-local setting app.tenant_id, which the
-- server sets with set_config('app.tenant_id', $1, true) at the start of each request's
-- transaction. Without that setting no tenant-owned row is visible or writable.
--
-- The server connects as a login role that is a member of codexcontinue_app, which owns
-- nothing and has neither SUPERUSER nor BYPASSRLS. Tables are owned by the role that runs
-- migrations.

CREATE EXTENSION IF NOT EXISTS vector;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'codexcontinue_app') THEN
        CREATE ROLE codexcontinue_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

-- The tenant of the current transaction, or NULL when none was set (which matches no row).
CREATE FUNCTION codexcontinue_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id           uuid PRIMARY KEY,
    slug         text NOT NULL UNIQUE
                 CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{1,61}[a-z0-9])$'),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 200),
    state        text NOT NULL DEFAULT 'active'
                 CHECK (state IN ('active', 'suspended', 'deleted')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL,
    email            text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    display_name     text NOT NULL DEFAULT '',
    external_subject text,
    disabled         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_login_at    timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
CREATE UNIQUE INDEX users_tenant_subject ON users (tenant_id, external_subject)
    WHERE external_subject IS NOT NULL;

-- Which role each user holds in their tenant.
CREATE TABLE role_assignments (
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    role       text NOT NULL CHECK (role ~ '^[a-z][a-z0-9_-]{0,62}$'),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, role),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- API keys: only a SHA-256 of the secret is kept; the secret is shown once at creation.
CREATE TABLE api_keys (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    owner_user_id uuid NOT NULL,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    prefix        text NOT NULL,
    secret_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(secret_sha256) = 32),
    roles         text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, owner_user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = codexcontinue_current_tenant())
    WITH CHECK (id = codexcontinue_current_tenant());

-- The standard isolation of a tenant-owned table: row-level security, enabled and forced
-- (so it binds the owner too), with one policy matching tenant_id to the transaction's
-- tenant, and one letting the schema owner read every row. The owner reads only inside the
-- SECURITY DEFINER functions below (e.g. finding the tenant of a presented credential); the
-- server refuses to run as the owner. Every migration that adds a tenant-owned table calls
-- this.
CREATE PROCEDURE codexcontinue_isolate_by_tenant(p_table regclass)
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s
             USING (tenant_id = codexcontinue_current_tenant())
             WITH CHECK (tenant_id = codexcontinue_current_tenant())',
        p_table);
    EXECUTE format('CREATE POLICY owner_read ON %s FOR SELECT TO %I USING (true)',
                   p_table, current_user);
END
$$;
REVOKE ALL ON PROCEDURE codexcontinue_isolate_by_tenant(regclass) FROM PUBLIC;

CALL codexcontinue_isolate_by_tenant('users');
CALL codexcontinue_isolate_by_tenant('role_assignments');
CALL codexcontinue_isolate_by_tenant('api_keys');

-- Platform path: creating a tenant and finding one by slug cross tenant boundaries, so
-- they are the only things the application role may do outside a tenant scope, and only
-- through these two functions, which run with the owner's rights and do nothing else.
CREATE FUNCTION codexcontinue_create_tenant(p_id uuid, p_slug text, p_display_name text)
    RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ INSERT INTO public.tenants (id, slug, display_name) VALUES (p_id, p_slug, p_display_name) $$;

CREATE FUNCTION codexcontinue_tenant_id_by_slug(p_slug text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$ SELECT id FROM public.tenants WHERE slug = p_slug $$;

-- The functions run as the schema owner; this policy lets them (and only the owner, which
-- the server refuses to run as) past the tenant filter of the tenants table.
CREATE POLICY platform_owner ON tenants TO CURRENT_USER USING (true) WITH CHECK (true);

REVOKE ALL ON FUNCTION codexcontinue_create_tenant(uuid, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION codexcontinue_tenant_id_by_slug(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_create_tenant(uuid, text, text) TO codexcontinue_app;
GRANT EXECUTE ON FUNCTION codexcontinue_tenant_id_by_slug(text) TO codexcontinue_app;

GRANT SELECT, UPDATE ON tenants TO codexcontinue_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, role_assignments, api_keys TO codexcontinue_app;
-- The server checks at start that the schema is as new as it expects.
GRANT SELECT ON _sqlx_migrations TO codexcontinue_app;
