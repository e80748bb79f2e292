-- Session policy per customer with per-agent overrides (JSON objects), ephemeral
-- agents for support-code sessions, and the support codes themselves.

ALTER TABLE customers ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN ephemeral INTEGER NOT NULL DEFAULT 0 CHECK (ephemeral IN (0, 1));

CREATE TABLE support_codes (
    id          TEXT NOT NULL PRIMARY KEY,
    code_hash   TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    request     TEXT,
    expires_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    used_at     TEXT
);
