-- Which minutes of a session carried traffic (minute indices from its start, JSON),
-- so billing can exclude idle stretches from the raw facts.
ALTER TABLE sessions ADD COLUMN traffic_minutes TEXT NOT NULL DEFAULT '[]';
