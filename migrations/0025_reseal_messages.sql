-- Rotating a tenant's data key seals every value again with the new version, messages
-- included; the server's role could not update messages at all, so `crypto rotate` failed
-- on any tenant with a conversation. It may now rewrite a message's sealed content, and
-- nothing else of it: messages stay otherwise immutable.

GRANT UPDATE (content_sealed) ON messages TO codexcontinue_app;
