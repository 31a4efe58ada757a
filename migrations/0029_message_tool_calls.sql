-- The tool calls of a turn, kept with the reply they led to: for each call the plugin, the
-- tool, the arguments the model wrote, what the model read back, the outcome and the
-- latency, as JSON sealed with the tenant's data key like the message's content
-- (associated data: tenant | messages | id). NULL when the turn called no tool. They go
-- and come with the reply (a regeneration replaces them too), and `crypto rotate` re-seals
-- them.

ALTER TABLE messages ADD COLUMN tool_calls_sealed bytea;

-- Like the content, re-sealing is the only change the server's role may make to them.
GRANT UPDATE (tool_calls_sealed) ON messages TO codexcontinue_app;
