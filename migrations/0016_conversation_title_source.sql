-- Whether a conversation's title was made by the server (from the first message, then by
-- the title job) rather than given by the user. The title job replaces only such titles,
-- so a rename is never overwritten by a job that ran late.

ALTER TABLE conversations ADD COLUMN title_automatic boolean NOT NULL DEFAULT false;
