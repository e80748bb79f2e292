-- Prepaid hours pay only for work supplied on or after their valid-from day
-- ("YYYY-MM-DD", a day in the company's time zone). Blocks bought before this
-- migration get the day they were bought: the date part of created_at (UTC; the
-- company's time zone lives in relay.toml, out of SQL's reach).
ALTER TABLE prepaid_blocks ADD COLUMN valid_from TEXT NOT NULL DEFAULT '';

UPDATE prepaid_blocks SET valid_from = substr(created_at, 1, 10);

-- A customer's own prepaid settings; NULL keeps the relay's [billing] default.
CREATE TABLE prepaid_terms (
    customer_id        TEXT NOT NULL PRIMARY KEY REFERENCES customers (id),
    updated_at         TEXT NOT NULL,
    updated_by         TEXT NOT NULL,
    pays               TEXT CHECK (pays IN ('base', 'all')),
    warn_below_minutes INTEGER CHECK (warn_below_minutes >= 0)
);

-- What an invoice printed about prepaid hours: its notes (JSON array of text) and
-- the balance after it (NULL: the customer had no prepaid hours). Credit notes
-- keep the defaults.
ALTER TABLE invoices ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';

ALTER TABLE invoices ADD COLUMN prepaid_left_minutes INTEGER;
