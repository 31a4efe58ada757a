-- The audit trail is kept for years: bound what one event may hold. The server cuts every
-- field to these lengths (and replaces NUL, which Postgres text refuses) before it hashes
-- and writes an event, so these checks only catch a defect; they hold for new rows
-- (NOT VALID: rows written before stay as they are and as they were hashed).

ALTER TABLE audit_events
    ADD CONSTRAINT audit_events_bounded CHECK (
        char_length(action) <= 256
        AND char_length(resource_type) <= 64
        AND char_length(resource_id) <= 512
        AND char_length(actor_id) <= 256
        AND char_length(request_id) <= 256
        AND char_length(client_address) <= 256
        AND char_length(user_agent) <= 512
        AND octet_length(details::text) <= 16384
    ) NOT VALID;
