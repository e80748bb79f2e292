-- How long the relay could not write its database during a session: it kept the
-- session's time in memory and wrote its end when it could (shown on the entry).
ALTER TABLE sessions ADD COLUMN store_gap_seconds INTEGER NOT NULL DEFAULT 0;

-- The stretches without payload, to the second (idle exclusion); NULL for sessions
-- recorded before the relay kept them (they are judged by their traffic minutes).
ALTER TABLE sessions ADD COLUMN quiet TEXT;
