-- Plugins a tenant registered (PluginService): tools the assistant may call during a turn.
--
-- `manifest` is the pinned manifest (name, version, description, tools with their argument
-- schemas, requested capabilities) as the server normalised it, and `manifest_sha256` its
-- hash. A refresh that reads a different manifest stores it in `pending_manifest` and
-- disables the plugin until an owner or admin approves exactly that hash.
--
-- `secrets_sealed` holds the plugin's static credential (if any) and the key that turns
-- user and tenant ids into the opaque ids the plugin sees, sealed with the tenant's data
-- key (associated data: tenant | plugins | id).

CREATE TABLE plugins (
    tenant_id               uuid NOT NULL REFERENCES tenants (id),
    id                      uuid NOT NULL,
    name                    text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    transport               text NOT NULL CHECK (transport IN ('grpc', 'mcp')),
    endpoint                text NOT NULL CHECK (char_length(endpoint) BETWEEN 1 AND 2048),
    on_premises             boolean NOT NULL DEFAULT false,
    secrets_sealed          bytea NOT NULL,
    credential_set          boolean NOT NULL DEFAULT false,
    manifest                jsonb NOT NULL,
    manifest_sha256         bytea NOT NULL CHECK (octet_length(manifest_sha256) = 32),
    pending_manifest        jsonb,
    pending_manifest_sha256 bytea CHECK (octet_length(pending_manifest_sha256) = 32),
    granted                 text[] NOT NULL DEFAULT '{}' CHECK (cardinality(granted) <= 16),
    enabled                 boolean NOT NULL DEFAULT true,
    timeout_ms              integer NOT NULL CHECK (timeout_ms BETWEEN 1 AND 60000),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    refreshed_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    -- A plugin whose manifest changed cannot be enabled before it is approved.
    CHECK (pending_manifest IS NULL OR NOT enabled),
    CHECK ((pending_manifest IS NULL) = (pending_manifest_sha256 IS NULL))
);
CALL codexcontinue_isolate_by_tenant('plugins');
GRANT SELECT, INSERT, UPDATE, DELETE ON plugins TO codexcontinue_app;

-- The scheduled manifest refresh walks every tenant's plugins from one replica; like the
-- other sweeps it reads through the owner's SECURITY DEFINER function, ids only.
CREATE FUNCTION codexcontinue_plugins_due(p_before timestamptz, p_limit integer)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT p.tenant_id, p.id FROM plugins p
        JOIN tenants t ON t.id = p.tenant_id AND t.state = 'active'
        WHERE p.refreshed_at < p_before
        ORDER BY p.refreshed_at
        LIMIT p_limit
    $$;
REVOKE ALL ON FUNCTION codexcontinue_plugins_due(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_plugins_due(timestamptz, integer) TO codexcontinue_app;
