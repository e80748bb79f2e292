-- Diagnostics snapshots (bounded history per agent) and help requests.

CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    taken_at    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    kind        TEXT NOT NULL,           -- refresh | session_start | session_end | help
    session_id  TEXT,
    request_id  INTEGER,
    worst       TEXT,                    -- most severe finding, if any
    data        TEXT NOT NULL            -- the snapshot as JSON
);
CREATE INDEX snapshots_agent ON snapshots (agent_id, id);
CREATE INDEX snapshots_session ON snapshots (session_id);

CREATE TABLE help_requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- the request number
    agent_id    TEXT NOT NULL REFERENCES agents (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    text        TEXT NOT NULL,
    urgent      INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    assigned_to TEXT,
    resolution  TEXT,
    snapshot_id INTEGER
);
CREATE INDEX help_requests_state ON help_requests (state, urgent, created_at);
