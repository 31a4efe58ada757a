-- Authenticating an API key: the presented key's SHA-256 is the only input, and the tenant
-- is what the lookup finds, so this read crosses tenants. It runs as the schema owner and
-- returns only what authentication needs; the caller decides whether the key is usable
-- (not revoked, not expired, tenant active, owner not disabled).

CREATE FUNCTION codexcontinue_authenticate_api_key(p_secret_sha256 bytea)
    RETURNS TABLE (
        tenant_id     uuid,
        tenant_slug   text,
        tenant_state  text,
        key_id        uuid,
        user_id       uuid,
        user_email    text,
        user_disabled boolean,
        roles         text[],
        expires_at    timestamptz,
        revoked_at    timestamptz
    )
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        SELECT t.id, t.slug, t.state, k.id, u.id, u.email, u.disabled, k.roles,
               k.expires_at, k.revoked_at
        FROM public.api_keys k
        JOIN public.tenants t ON t.id = k.tenant_id
        JOIN public.users u ON u.tenant_id = k.tenant_id AND u.id = k.owner_user_id
        WHERE k.secret_sha256 = p_secret_sha256
    $$;

REVOKE ALL ON FUNCTION codexcontinue_authenticate_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_authenticate_api_key(bytea) TO codexcontinue_app;
