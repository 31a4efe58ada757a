-- Azure OpenAI providers that authenticate with Microsoft Entra ID instead of an API key:
-- the app registration (directory id, client id, authority, scope) the server gets
-- tokens for with the client credentials flow; the client secret is the sealed
-- credential. NULL: the credential is an API key (or token) sent as is.

ALTER TABLE providers ADD COLUMN entra jsonb
    CHECK (entra IS NULL OR jsonb_typeof(entra) = 'object');
