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

