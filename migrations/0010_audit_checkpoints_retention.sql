-- Signed checkpoints and retention for the audit trail.
--
-- A checkpoint is the server's Ed25519 signature over (tenant, seq, hash, kind, time) of a
-- point in a tenant's chain. Periodic checkpoints make cutting off the newest events
-- detectable (a signed seq beyond the last event); a retention checkpoint marks where the
-- purge cut the chain, so the oldest surviving event still links to something signed.
-- Checkpoints are append-only like the events.
--
-- Retention: each tenant keeps its events `audit_retention_days` (default six years,
-- counting leap days). Purging goes through codexcontinue_audit_purge(), the only path
-- that may delete events, and only events that are both older than the tenant's retention
-- and covered by a retention checkpoint.

CREATE TABLE audit_checkpoints (
    tenant_id uuid NOT NULL,
    seq       bigint NOT NULL CHECK (seq >= 0),
    hash      bytea NOT NULL CHECK (octet_length(hash) = 32),
    kind      text NOT NULL CHECK (kind IN ('periodic', 'retention')),
    signed_at timestamptz NOT NULL,
    key_id    text NOT NULL,
    signature bytea NOT NULL CHECK (octet_length(signature) = 64),
    PRIMARY KEY (tenant_id, seq, kind)
);
CALL codexcontinue_isolate_by_tenant('audit_checkpoints');
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION codexcontinue_audit_append_only();
GRANT SELECT, INSERT ON audit_checkpoints TO codexcontinue_app;

ALTER TABLE tenants ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 2192
    CHECK (audit_retention_days BETWEEN 1 AND 36525);

-- Deletes the scoped tenant's events through p_through (and the checkpoints before it).
-- Refuses unless a retention checkpoint exists at p_through and the event there is older
-- than the tenant's retention. Returns the number of events deleted.
CREATE FUNCTION codexcontinue_audit_purge(p_through bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
DECLARE
    v_tenant  uuid := codexcontinue_current_tenant();
    v_days    integer;
    v_deleted bigint;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'audit purge needs a tenant scope';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_checkpoints
                   WHERE tenant_id = v_tenant AND seq = p_through AND kind = 'retention') THEN
        RAISE EXCEPTION 'no retention checkpoint at seq %', p_through;
    END IF;
    SELECT coalesce(max(audit_retention_days), 2192) INTO v_days FROM tenants WHERE id = v_tenant;
    IF EXISTS (SELECT 1 FROM audit_events
               WHERE tenant_id = v_tenant AND seq = p_through
                 AND occurred_at >= now() - make_interval(days => v_days)) THEN
        RAISE EXCEPTION 'events through seq % are within the retention period', p_through;
    END IF;
    PERFORM set_config('codexcontinue.audit_retention', 'on', true);
    DELETE FROM audit_events WHERE tenant_id = v_tenant AND seq <= p_through;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    DELETE FROM audit_checkpoints WHERE tenant_id = v_tenant AND seq < p_through;
    PERFORM set_config('codexcontinue.audit_retention', 'off', true);
    RETURN v_deleted;
END
$$;
REVOKE ALL ON FUNCTION codexcontinue_audit_purge(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_audit_purge(bigint) TO codexcontinue_app;


-- Appending events of many tenants in one statement (the server's audit writer commits
-- the events of many calls together, usually in one round trip). The caller passes, per
-- tenant in ascending tenant order, the chain head it believes the tenant has and how many
-- of the events (given tenant by tenant in that order, one array per column) follow it.
-- Every head is locked (made at seq 0 when missing) and compared; if all match, the
-- events are inserted and each head moved to its tenant's last event; otherwise nothing
-- is inserted and the heads that differ are returned, still locked for the rest of the
-- caller's transaction, so chaining onto them again cannot conflict. It runs as the
-- caller, under row-level security: each tenant's statements run in that tenant's scope,
-- and the scope stays on the last tenant afterwards.
CREATE FUNCTION codexcontinue_audit_append(
    p_head_tenant uuid[], p_head_seq bigint[], p_head_hash bytea[], p_head_events integer[],
    p_tenant_id uuid[], p_seq bigint[], p_id uuid[], p_occurred_at timestamptz[],
    p_actor_kind text[], p_actor_id text[], p_action text[], p_resource_type text[],
    p_resource_id text[], p_outcome text[], p_status_code integer[], p_request_id text[],
    p_client_address text[], p_user_agent text[], p_phi boolean[], p_details jsonb[],
    p_hash bytea[])
    RETURNS TABLE (head_tenant uuid, head_seq bigint, head_hash bytea)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_seq      bigint;
    v_hash     bytea;
    v_conflict boolean := false;
    v_first    integer := 1;
    v_last     integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_head_tenant, 1), 0) LOOP
        PERFORM set_config('app.tenant_id', p_head_tenant[i]::text, true);
        INSERT INTO audit_chain_heads AS head (tenant_id, seq, hash)
            VALUES (p_head_tenant[i], 0, decode(repeat('00', 32), 'hex'))
            ON CONFLICT (tenant_id) DO UPDATE SET seq = head.seq
            RETURNING head.seq, head.hash INTO v_seq, v_hash;
        IF v_seq IS DISTINCT FROM p_head_seq[i] OR v_hash IS DISTINCT FROM p_head_hash[i] THEN
            v_conflict := true;
            head_tenant := p_head_tenant[i];
            head_seq := v_seq;
            head_hash := v_hash;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF v_conflict THEN
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_head_tenant, 1), 0) LOOP
        CONTINUE WHEN p_head_events[i] = 0;
        v_last := v_first + p_head_events[i] - 1;
        PERFORM set_config('app.tenant_id', p_head_tenant[i]::text, true);
        INSERT INTO audit_events
            (tenant_id, seq, id, occurred_at, actor_kind, actor_id, action, resource_type,
             resource_id, outcome, status_code, request_id, client_address, user_agent, phi,
             details, hash)
        SELECT * FROM unnest(
            p_tenant_id[v_first:v_last], p_seq[v_first:v_last], p_id[v_first:v_last],
            p_occurred_at[v_first:v_last], p_actor_kind[v_first:v_last],
            p_actor_id[v_first:v_last], p_action[v_first:v_last],
            p_resource_type[v_first:v_last], p_resource_id[v_first:v_last],
            p_outcome[v_first:v_last], p_status_code[v_first:v_last],
            p_request_id[v_first:v_last], p_client_address[v_first:v_last],
            p_user_agent[v_first:v_last], p_phi[v_first:v_last], p_details[v_first:v_last],
            p_hash[v_first:v_last]);
        UPDATE audit_chain_heads SET seq = p_seq[v_last], hash = p_hash[v_last]
            WHERE tenant_id = p_head_tenant[i];
        v_first := v_last + 1;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION codexcontinue_audit_append(uuid[], bigint[], bytea[], integer[],
    uuid[], bigint[], uuid[], timestamptz[], text[], text[], text[], text[], text[], text[],
    integer[], text[], text[], text[], boolean[], jsonb[], bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_audit_append(uuid[], bigint[], bytea[], integer[],
    uuid[], bigint[], uuid[], timestamptz[], text[], text[], text[], text[], text[], text[],
    integer[], text[], text[], text[], boolean[], jsonb[], bytea[]) TO codexcontinue_app;
