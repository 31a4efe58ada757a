-- Sandboxed WebAssembly plugins: a tenant uploads a component (kept here, at most 16 MiB)
-- or names one the operator ships in `plugins.wasm_folder` (endpoint `builtin:<name>`,
-- no component stored). Their endpoint is `component:<sha256>` or `builtin:<name>`, never
-- a network address.

ALTER TABLE plugins DROP CONSTRAINT plugins_transport_check;
ALTER TABLE plugins ADD CONSTRAINT plugins_transport_check
    CHECK (transport IN ('grpc', 'mcp', 'wasm'));
ALTER TABLE plugins ADD COLUMN component bytea
    CHECK (component IS NULL OR octet_length(component) <= 16777216);
ALTER TABLE plugins ADD CONSTRAINT plugins_component_only_for_wasm
    CHECK (component IS NULL OR transport = 'wasm');
