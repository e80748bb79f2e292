-- Prepaid hours pay only for work supplied on or after their valid-from day
-- ("YYYY-MM-DD", a day in the company's time zone). Blocks bought before this
-- migration get the day they were bought: the date part of created_at (UTC; the
-- company's time zone lives in relay.toml, out of SQL's reach).
ALTER TABLE prepaid_blocks ADD COLUMN valid_from TEXT NOT NULL DEFAULT '';

UPDATE prepaid_blocks SET valid_from = substr(created_at, 1, 10);
