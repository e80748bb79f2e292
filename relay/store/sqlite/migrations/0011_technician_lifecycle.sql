-- Technicians' credentials expire and can be rotated; billing logins read only what
-- an admin granted them.
--
-- token_expires_at is NULL for tokens made before expiry existed: the relay stamps
-- them with now + limits.technician_token_days when it starts, so an upgrade never
-- locks anyone out (the setting lives in relay.toml, which SQL cannot read).
ALTER TABLE technicians ADD COLUMN token_expires_at TEXT;

-- JSON list of grants: "recordings", "diagnostics", "help".
ALTER TABLE technicians ADD COLUMN grants TEXT NOT NULL DEFAULT '[]';
