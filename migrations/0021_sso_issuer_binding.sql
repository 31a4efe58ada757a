-- A user signed in through SSO is bound to (issuer, subject), not to a subject alone.
--
-- Subjects are unique only within one issuer: a tenant's provider changed to another
-- issuer could otherwise present a subject that names an existing user (the owner, say)
-- and sign in as them. Existing links take the issuer of their tenant's current provider;
-- a link whose tenant has no provider any more is dropped (the user links again by their
-- verified email at the next login). Both columns are set together or not at all.
--
-- An empty list of allowed email domains used to admit every account of the issuer; the
-- server now reads it as "nobody" and asks for ["*"] to admit anyone. Providers saved with
-- an empty list keep admitting anyone, now said explicitly.

ALTER TABLE users ADD COLUMN external_issuer text
    CHECK (char_length(external_issuer) BETWEEN 1 AND 2048);

-- Row-level security binds the owner running this migration too: visit each tenant in its
-- own scope.
DO $$
DECLARE
    v_tenant uuid;
BEGIN
    FOR v_tenant IN SELECT DISTINCT tenant_id FROM users WHERE external_subject IS NOT NULL LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        UPDATE users u SET external_issuer = p.issuer_url
            FROM identity_providers p
            WHERE p.tenant_id = u.tenant_id AND u.external_subject IS NOT NULL;
        UPDATE users SET external_subject = NULL
            WHERE external_subject IS NOT NULL AND external_issuer IS NULL;
    END LOOP;
    FOR v_tenant IN SELECT tenant_id FROM identity_providers
                    WHERE cardinality(allowed_email_domains) = 0 LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        UPDATE identity_providers SET allowed_email_domains = '{*}'
            WHERE tenant_id = v_tenant;
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
END
$$;

ALTER TABLE users ADD CONSTRAINT users_external_identity_whole
    CHECK ((external_issuer IS NULL) = (external_subject IS NULL));

DROP INDEX users_tenant_subject;
CREATE UNIQUE INDEX users_tenant_issuer_subject ON users (tenant_id, external_issuer, external_subject)
    WHERE external_subject IS NOT NULL;
