-- Whether the server may still choose a conversation's profile: true for conversations
-- created without one (served as "general" until then). At the first message the domain
-- classifier, when the server has one, picks the profile, and the flag is cleared.

ALTER TABLE conversations ADD COLUMN profile_automatic boolean NOT NULL DEFAULT false;
