-- Lists are read a page at a time, after the sort key of the last row seen (keyset
-- paging): each order gets an index that ends in the row's id, so a page is a range
-- scan whatever its depth.
CREATE INDEX sessions_created_id ON sessions (created_at, id);
CREATE INDEX enroll_tokens_created_id ON enroll_tokens (created_at, id);
CREATE INDEX customers_name_id ON customers (name COLLATE NOCASE, id);
CREATE INDEX time_entries_started_id ON time_entries (started_at, id);
-- The queue's order (urgent first, then oldest) and the per-agent count of open
-- requests that limits.help_requests_per_agent caps.
CREATE INDEX help_requests_queue ON help_requests (state, (1 - urgent), created_at, id);
CREATE INDEX help_requests_agent ON help_requests (agent_id, state);
