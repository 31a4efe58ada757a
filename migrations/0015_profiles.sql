-- Tenant-defined domain profiles (AdminService.SetProfile / DeleteProfile).
--
-- The built-in profiles (general, health, legal, finance, developer) live in the server;
-- a row with a built-in id overrides it for the tenant, any other id is a profile of the
-- tenant's own. phi_policy NULL means "the tenant's policy". Conversations keep the
-- profile id; a conversation whose custom profile was deleted is served as "general".

CREATE TABLE profiles (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    id              text NOT NULL CHECK (id ~ '^[a-z][a-z0-9_-]{0,62}$'),
    display_name    text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    description     text NOT NULL CHECK (char_length(description) <= 500),
    system_prompt   text NOT NULL CHECK (octet_length(system_prompt) <= 16384),
    default_model   text NOT NULL CHECK (char_length(default_model) BETWEEN 1 AND 200),
    phi_policy      text CHECK (phi_policy IN ('allow', 'redact', 'refuse')),
    allowed_plugins text[] NOT NULL DEFAULT '{}' CHECK (cardinality(allowed_plugins) <= 64),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CALL codexcontinue_isolate_by_tenant('profiles');
GRANT SELECT, INSERT, UPDATE, DELETE ON profiles TO codexcontinue_app;
