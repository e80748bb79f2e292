-- One name per concept: the help request (or outside reference) a session or a
-- time entry is for is its "request", as the console and the API call it.
ALTER TABLE sessions RENAME COLUMN ticket TO request;
ALTER TABLE time_entries RENAME COLUMN ticket TO request;
