-- Billing: rate cards, billable time entries with their edit history, customers'
-- billing data, prepaid hours, invoices with gap-free yearly numbers.
--
-- Dates (calendar days in the company's time zone) are "YYYY-MM-DD" text; other
-- conventions as in 0001. The tables record; the rules live in Python.

CREATE TABLE rate_cards (
    digest         TEXT NOT NULL PRIMARY KEY,
    effective_from TEXT NOT NULL,
    name           TEXT NOT NULL,
    toml           TEXT NOT NULL,              -- the imported file, verbatim
    source_name    TEXT NOT NULL,
    imported_at    TEXT NOT NULL,
    imported_by    TEXT NOT NULL
);

CREATE INDEX rate_cards_effective ON rate_cards (effective_from, imported_at);

CREATE TABLE customer_billing (
    customer_id        TEXT NOT NULL PRIMARY KEY REFERENCES customers (id),
    legal_name         TEXT NOT NULL,
    address_lines      TEXT NOT NULL,          -- JSON array, one or two lines
    postcode           TEXT NOT NULL,
    city               TEXT NOT NULL,
    country            TEXT NOT NULL,
    endpoint_id        TEXT NOT NULL,
    endpoint_scheme    TEXT NOT NULL,
    payment_terms_days INTEGER NOT NULL CHECK (payment_terms_days >= 0),
    updated_at         TEXT NOT NULL,
    kvk                TEXT,
    vat_id             TEXT,
    email              TEXT,
    reverse_charge     INTEGER NOT NULL DEFAULT 0 CHECK (reverse_charge IN (0, 1)),
    reference          TEXT NOT NULL DEFAULT ''
);

-- Documents are numbered YYYY-NNNNNN per issue year, invoices and credit notes in
-- one gap-free sequence; the number is allocated in the transaction that inserts.
CREATE TABLE invoices (
    id                 TEXT NOT NULL PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,
    year               INTEGER NOT NULL,
    seq                INTEGER NOT NULL CHECK (seq > 0),
    kind               TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    issue_date         TEXT NOT NULL,
    due_date           TEXT NOT NULL,
    period_start       TEXT NOT NULL,
    period_end         TEXT NOT NULL,
    buyer_reference    TEXT NOT NULL,
    currency           TEXT NOT NULL,
    supplier           TEXT NOT NULL,          -- JSON snapshot of the supplier
    customer           TEXT NOT NULL,          -- JSON snapshot of the customer party
    total_excl_vat     TEXT NOT NULL,
    vat_total          TEXT NOT NULL,
    total_incl_vat     TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    credits_invoice_id TEXT UNIQUE REFERENCES invoices (id),  -- one credit note per invoice
    UNIQUE (year, seq)
);

CREATE INDEX invoices_customer ON invoices (customer_id, issue_date);

CREATE TABLE invoice_lines (
    invoice_id       TEXT NOT NULL REFERENCES invoices (id),
    position         INTEGER NOT NULL,
    entry_id         TEXT,
    description      TEXT NOT NULL,
    supply_date      TEXT NOT NULL,
    technician       TEXT NOT NULL,
    request_ref      TEXT,
    actual_minutes   INTEGER NOT NULL,
    billable_minutes INTEGER NOT NULL,
    prepaid_minutes  INTEGER NOT NULL,
    unit_price       TEXT NOT NULL,
    vat_code         TEXT NOT NULL,
    vat_percent      TEXT NOT NULL,
    surcharges       TEXT NOT NULL,            -- JSON array of descriptions
    amount           TEXT NOT NULL,
    PRIMARY KEY (invoice_id, position)
);

-- Invoices are never deleted or changed: corrections are credit notes.
CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices are never changed (make a credit note)');
END;

CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices are never deleted (make a credit note)');
END;

CREATE TRIGGER invoice_lines_no_update BEFORE UPDATE ON invoice_lines
BEGIN
    SELECT RAISE(ABORT, 'invoices are never changed (make a credit note)');
END;

CREATE TRIGGER invoice_lines_no_delete BEFORE DELETE ON invoice_lines
BEGIN
    SELECT RAISE(ABORT, 'invoices are never deleted (make a credit note)');
END;

-- time_entries is rebuilt: manual work (phone, on site) has no agent, so agent_id
-- may be '' (a trigger keeps any other value pointing at an agent), and billing
-- keeps its own columns. Columns of 0001 keep their names and meaning.
CREATE TABLE time_entries_billing (
    id               TEXT NOT NULL PRIMARY KEY,
    session_ids      TEXT NOT NULL,
    customer_id      TEXT NOT NULL REFERENCES customers (id),
    agent_id         TEXT NOT NULL,
    technician_id    TEXT NOT NULL REFERENCES technicians (id),
    started_at       TEXT NOT NULL,
    ended_at         TEXT NOT NULL,
    actual_seconds   INTEGER NOT NULL,
    billable_minutes INTEGER NOT NULL,
    hourly_rate      TEXT NOT NULL,
    amount           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('draft', 'approved', 'invoiced')),
    created_at       TEXT NOT NULL,
    service_type     TEXT NOT NULL,
    ticket           TEXT,
    notes            TEXT NOT NULL DEFAULT '',
    details          TEXT NOT NULL DEFAULT '{}',
    complexity       TEXT NOT NULL DEFAULT 'standard',
    urgent           INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
    idle_seconds     INTEGER NOT NULL DEFAULT 0,
    card_digest      TEXT NOT NULL DEFAULT '',  -- '' = the relay's default rate
    surcharges       TEXT NOT NULL DEFAULT '[]',
    source           TEXT NOT NULL DEFAULT 'session' CHECK (source IN ('session', 'manual')),
    approved_at      TEXT,
    approved_by      TEXT,
    invoiced_at      TEXT,
    invoice_id       TEXT REFERENCES invoices (id),
    revision         INTEGER NOT NULL DEFAULT 0
);

INSERT INTO time_entries_billing (
    id, session_ids, customer_id, agent_id, technician_id, started_at, ended_at,
    actual_seconds, billable_minutes, hourly_rate, amount, status, created_at,
    service_type, ticket, notes, details
)
SELECT
    id, session_ids, customer_id, agent_id, technician_id, started_at, ended_at,
    actual_seconds, billable_minutes, hourly_rate, amount, status, created_at,
    service_type, ticket, notes, details
FROM time_entries;

DROP TABLE time_entries;

ALTER TABLE time_entries_billing RENAME TO time_entries;

CREATE INDEX time_entries_created ON time_entries (created_at);
CREATE INDEX time_entries_customer ON time_entries (customer_id, status, started_at);
CREATE INDEX time_entries_technician ON time_entries (technician_id, started_at);
CREATE INDEX time_entries_invoice ON time_entries (invoice_id) WHERE invoice_id IS NOT NULL;

CREATE TRIGGER time_entries_agent_insert BEFORE INSERT ON time_entries
WHEN NEW.agent_id <> '' AND NOT EXISTS (SELECT 1 FROM agents WHERE id = NEW.agent_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: unknown agent');
END;

CREATE TRIGGER time_entries_agent_update BEFORE UPDATE OF agent_id ON time_entries
WHEN NEW.agent_id <> '' AND NOT EXISTS (SELECT 1 FROM agents WHERE id = NEW.agent_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: unknown agent');
END;

-- Who changed which field of an entry, when and why: append-only.
CREATE TABLE time_entry_edits (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL REFERENCES time_entries (id),
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    field    TEXT NOT NULL,
    old      TEXT,
    new      TEXT,
    reason   TEXT NOT NULL
);

CREATE INDEX time_entry_edits_entry ON time_entry_edits (entry_id, id);

CREATE TRIGGER time_entry_edits_no_update BEFORE UPDATE ON time_entry_edits
BEGIN
    SELECT RAISE(ABORT, 'the edit history is append-only');
END;

CREATE TRIGGER time_entry_edits_no_delete BEFORE DELETE ON time_entry_edits
BEGIN
    SELECT RAISE(ABORT, 'the edit history is append-only');
END;

CREATE TABLE prepaid_blocks (
    id          TEXT NOT NULL PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    minutes     INTEGER NOT NULL CHECK (minutes > 0),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    expires_on  TEXT,
    note        TEXT NOT NULL DEFAULT ''
);

CREATE INDEX prepaid_blocks_customer ON prepaid_blocks (customer_id, created_at);

-- Minutes drawn from a block by an invoice (negative: undone by its credit note).
CREATE TABLE prepaid_draws (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    block_id   TEXT NOT NULL REFERENCES prepaid_blocks (id),
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    entry_id   TEXT NOT NULL REFERENCES time_entries (id),
    minutes    INTEGER NOT NULL CHECK (minutes <> 0)
);

CREATE INDEX prepaid_draws_block ON prepaid_draws (block_id);
