-- A key made by calling CreateApiKey with another key remembers that parent: it expires no
-- later than the parent (the server caps its expiry at creation) and is revoked with it
-- (revoking a key revokes every key made through it, at any depth). Before, such keys
-- outlived their parent's expiry and survived its revocation, so a leaked short-lived key
-- could mint itself a permanent one.

ALTER TABLE api_keys ADD COLUMN parent_key_id uuid;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_parent
    FOREIGN KEY (tenant_id, parent_key_id) REFERENCES api_keys (tenant_id, id) ON DELETE CASCADE;
CREATE INDEX api_keys_parent ON api_keys (tenant_id, parent_key_id)
    WHERE parent_key_id IS NOT NULL;
-- Counting a user's active keys (the per-user cap).
CREATE INDEX api_keys_owner ON api_keys (tenant_id, owner_user_id);
