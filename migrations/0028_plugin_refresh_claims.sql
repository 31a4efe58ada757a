-- The scheduled manifest refresh, shared by every replica and fair to every plugin.
--
-- A replica claims the plugins that are due: their `refresh_next_at` moves ahead by a
-- lease, so other replicas pass them by (rows being claimed are skipped, not waited for).
-- A plugin that does not answer counts a failure and waits longer each time (doubling
-- from a sixteenth of the refresh interval, at most the interval), so plugins that are
-- down cannot keep the others from being read. A manifest read resets the count.

ALTER TABLE plugins ADD COLUMN refresh_next_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE plugins ADD COLUMN refresh_failures integer NOT NULL DEFAULT 0
    CHECK (refresh_failures >= 0);

DROP FUNCTION codexcontinue_plugins_due(timestamptz, integer);

CREATE FUNCTION codexcontinue_plugins_claim_due(
    p_before timestamptz, p_lease interval, p_limit integer
)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public
    AS $$
        UPDATE plugins p SET refresh_next_at = now() + p_lease
        FROM (
            SELECT q.tenant_id, q.id FROM plugins q
            JOIN tenants t ON t.id = q.tenant_id AND t.state = 'active'
            WHERE q.refreshed_at < p_before AND q.refresh_next_at <= now()
            ORDER BY q.refreshed_at
            LIMIT p_limit
            FOR UPDATE OF q SKIP LOCKED
        ) due
        WHERE p.tenant_id = due.tenant_id AND p.id = due.id
        RETURNING p.tenant_id, p.id
    $$;
REVOKE ALL ON FUNCTION codexcontinue_plugins_claim_due(timestamptz, interval, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION codexcontinue_plugins_claim_due(timestamptz, interval, integer)
    TO codexcontinue_app;
