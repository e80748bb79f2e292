"""The relay's store in one SQLite file: :class:`SQLiteStore`, for a single relay node.

One module per concern, named so that ``relay/store/postgres/`` can mirror them:

- :mod:`~relay.store.sqlite.base`: the connection, its lock and transactions,
  error translation, opening, migrating and closing (:class:`SQLiteBase`);
- :mod:`~relay.store.sqlite.codec`: records to rows and back;
- :mod:`~relay.store.sqlite.migrations`: the numbered schema scripts in
  ``migrations/``;
- :mod:`~relay.store.sqlite.directory`: meta, customers, technicians, enrollment
  tokens, agents, support codes, policies;
- :mod:`~relay.store.sqlite.sessions`: sessions, heartbeats, closing, the spine's
  time entries, the audit trail;
- :mod:`~relay.store.sqlite.diagnostics`: snapshots and help requests;
- :mod:`~relay.store.sqlite.entries`: rate cards, billable entries, their history
  and approval, closing a session into an entry;
- :mod:`~relay.store.sqlite.invoices`: customers' billing data, prepaid hours,
  invoices and credit notes.

Each domain class subclasses :class:`SQLiteBase`, so they all share one connection
and one transaction helper; :class:`SQLiteStore` joins them under the interface.
"""

from __future__ import annotations

from relay.store.interface import Store
from relay.store.sqlite.diagnostics import SQLiteDiagnostics
from relay.store.sqlite.directory import SQLiteDirectory
from relay.store.sqlite.entries import SQLiteEntries
from relay.store.sqlite.invoices import SQLiteInvoices
from relay.store.sqlite.sessions import SQLiteSessions

__all__ = ["SQLiteStore"]


class SQLiteStore(
    SQLiteDirectory, SQLiteSessions, SQLiteDiagnostics, SQLiteEntries, SQLiteInvoices, Store
):
    """The relay's store in the SQLite file at ``path`` (created 0600 on first open)."""
