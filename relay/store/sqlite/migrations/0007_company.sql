-- The company's own data, the supplier on its invoices, as set with `qp company set`
-- (relay.toml's [company] values stand in until the first time). One row.
CREATE TABLE company (
    id            INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    legal_name    TEXT NOT NULL,
    address_lines TEXT NOT NULL,               -- JSON array, one or two lines
    postcode      TEXT NOT NULL,
    city          TEXT NOT NULL,
    country       TEXT NOT NULL,
    kvk           TEXT NOT NULL,
    vat_id        TEXT NOT NULL,
    iban          TEXT NOT NULL,
    email         TEXT NOT NULL,
    payment_means TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
);

-- Why a business in another EU country is charged Dutch VAT instead of reverse charge
-- (an explicit, audited override; empty when there is none).
ALTER TABLE customer_billing ADD COLUMN no_reverse_charge_reason TEXT NOT NULL DEFAULT '';
