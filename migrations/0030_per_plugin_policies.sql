-- A custom policy may grant calling one plugin's tools rather than every plugin's: its
-- object is then `plugin/<plugin name>` (the server accepts it for `plugin:invoke` and
-- `plugin:use` only). Existing policies keep their form.

ALTER TABLE role_policies DROP CONSTRAINT role_policies_object_check;
ALTER TABLE role_policies ADD CONSTRAINT role_policies_object_check
    CHECK (object ~ '^([a-z][a-z_]{0,62}|\*|plugin/[a-z][a-z0-9_-]{0,31})$');
