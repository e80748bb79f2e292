-- Quarkpulse relay schema, version 1 (SQLite).
--
-- Conventions:
--   * datetimes are ISO-8601 UTC text with microseconds, always the same width
--     ("2026-01-05T09:00:00.000000+00:00"), so text order is time order;
--   * money is a decimal string ("87.50"), never a float;
--   * booleans are 0/1 integers; lists and mappings are JSON text;
--   * tokens are kept only as their SHA-256 hex digest (token_hash).
-- schema_migrations is created by the store itself before this file runs.

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE customers (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at TEXT NOT NULL
);

CREATE TABLE technicians (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    level      INTEGER NOT NULL,
    role       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

-- A technician's customer scope; position keeps the order of Technician.customer_ids.
CREATE TABLE technician_customers (
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    customer_id   TEXT NOT NULL REFERENCES customers (id),
    position      INTEGER NOT NULL,
    PRIMARY KEY (technician_id, customer_id)
);

CREATE INDEX technician_customers_customer ON technician_customers (customer_id);

-- created_by is a technician id, deliberately without a foreign key: tokens may be
-- issued by local administration before any technician exists.
CREATE TABLE enroll_tokens (
    id          TEXT NOT NULL PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    expires_at  TEXT NOT NULL,
    uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);

CREATE INDEX enroll_tokens_created ON enroll_tokens (created_at);

CREATE TABLE agents (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    customer_id  TEXT NOT NULL REFERENCES customers (id),
    identity_key TEXT NOT NULL,
    host_key     TEXT NOT NULL,
    enrolled_at  TEXT NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    last_seen_at TEXT
);

CREATE INDEX agents_name ON agents (name, id);
CREATE INDEX agents_customer ON agents (customer_id);

CREATE TABLE sessions (
    id                  TEXT NOT NULL PRIMARY KEY,
    agent_id            TEXT NOT NULL REFERENCES agents (id),
    technician_id       TEXT NOT NULL REFERENCES technicians (id),
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    kind                TEXT NOT NULL,
    state               TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    relay_node          TEXT NOT NULL,
    started_at          TEXT,
    last_seen_at        TEXT,
    ended_at            TEXT,
    end_reason          TEXT,
    bytes_to_agent      INTEGER NOT NULL DEFAULT 0,
    bytes_to_technician INTEGER NOT NULL DEFAULT 0,
    active_minutes      INTEGER NOT NULL DEFAULT 0,
    ticket              TEXT
);

-- open_sessions(): only open sessions, per node, oldest first.
CREATE INDEX sessions_open ON sessions (relay_node, created_at) WHERE ended_at IS NULL;
-- list_sessions(): most recent first.
CREATE INDEX sessions_created ON sessions (created_at);

CREATE TABLE time_entries (
    id               TEXT NOT NULL PRIMARY KEY,
    session_ids      TEXT NOT NULL,                 -- JSON array of session ids
    customer_id      TEXT NOT NULL REFERENCES customers (id),
    agent_id         TEXT NOT NULL REFERENCES agents (id),
    technician_id    TEXT NOT NULL REFERENCES technicians (id),
    started_at       TEXT NOT NULL,
    ended_at         TEXT NOT NULL,
    actual_seconds   INTEGER NOT NULL,
    billable_minutes INTEGER NOT NULL,
    hourly_rate      TEXT NOT NULL,                 -- decimal string
    amount           TEXT NOT NULL,                 -- decimal string
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    service_type     TEXT NOT NULL,
    ticket           TEXT,
    notes            TEXT NOT NULL DEFAULT '',
    details          TEXT NOT NULL DEFAULT '{}'     -- JSON object
);

CREATE INDEX time_entries_created ON time_entries (created_at);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    event   TEXT NOT NULL,
    actor   TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '{}'              -- JSON object
);

-- The audit trail is append-only.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
