"""Who and what the relay knows: relay settings, customers, technicians,
enrollment tokens, agents, support codes and session policies (tables of
``0001_init.sql``, ``0002_policy_support_codes.sql`` and
``0011_technician_lifecycle.sql``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from relay.model import (
    Agent,
    AuditEvent,
    Customer,
    EnrollToken,
    Keyset,
    SupportCode,
    Technician,
    TechnicianChange,
)
from relay.store.sqlite import paging
from relay.store.sqlite.base import SQLiteBase
from relay.store.sqlite.codec import columns, decode, encode, insert_sql


class SQLiteDirectory(SQLiteBase):
    """The directory part of :class:`relay.store.interface.CoreStore`."""

    # -- relay metadata ------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        """A relay-wide setting stored at init (e.g. ``relay_id``)."""
        rows = await self._fetch("read meta", "SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        """Insert or replace a relay-wide setting."""
        await self._run(
            f"set meta {key!r}",
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- customers -----------------------------------------------------------------------

    async def add_customer(self, customer: Customer, *, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert; ConflictError if the name (case-insensitive) or id exists."""
        values = columns(customer)
        await self._run(
            f"add customer {customer.name!r}", insert_sql("customers", values), values, audit=audit
        )

    async def get_customer(self, customer_id: str) -> Customer | None:
        """By id."""
        sql = "SELECT * FROM customers WHERE id = ?"
        rows = await self._fetch("read customer", sql, (customer_id,))
        return decode(Customer, rows[0]) if rows else None

    async def find_customer(self, name: str) -> Customer | None:
        """By name, case-insensitive."""
        # The column is COLLATE NOCASE, so "=" compares case-insensitively (ASCII).
        rows = await self._fetch("find customer", "SELECT * FROM customers WHERE name = ?", (name,))
        return decode(Customer, rows[0]) if rows else None

    async def list_customers(self, page: Keyset | None = None) -> list[Customer]:
        """All customers (or one page) ordered by name, case-insensitively."""
        sql, params = paging.select("SELECT * FROM customers", page, ("name", "id"), scope="id")
        rows = await self._fetch("list customers", sql, params)
        return [decode(Customer, row) for row in rows]

    async def set_customer_policy(
        self, customer_id: str, policy: dict[str, Any], *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Replace a customer's session policy; False (nothing written) if unknown."""
        sql = "UPDATE customers SET policy = ? WHERE id = ?"
        params = (encode(policy), customer_id)
        return await self._run("set customer policy", sql, params, audit=audit) > 0

    # -- technicians ---------------------------------------------------------------------

    async def add_technician(
        self, technician: Technician, token_hash: str, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert with its customer scope; ConflictError on a duplicate id, name or token,
        or a scope naming an unknown customer."""
        values = columns(technician, drop=("customer_ids",), token_hash=token_hash)
        scope = [(technician.id, cid, pos) for pos, cid in enumerate(technician.customer_ids)]
        async with self._transaction(f"add technician {technician.name!r}") as db:
            await db.execute(insert_sql("technicians", values), values)
            await db.executemany(
                "INSERT INTO technician_customers (technician_id, customer_id, position)"
                " VALUES (?, ?, ?)",
                scope,
            )
            await self._write_audit(db, audit)

    async def _technicians(
        self, what: str, where: str, params: Sequence[Any], page: Keyset | None = None
    ) -> list[Technician]:
        """Technicians matching ``where`` (on alias ``t``) with their scopes, by name
        (one page of them when ``page`` is given)."""
        terms = [where.removeprefix("WHERE ")] if where else []
        sql, listed = paging.select(
            "SELECT t.* FROM technicians t", page, ("t.name", "t.id"), False, None, terms, params
        )
        async with self._transaction(what, write=False) as db:
            rows = await db.execute_fetchall(sql, listed)
            if page is not None:
                ids = [row["id"] for row in rows] or [""]
                where = f"WHERE t.id IN ({', '.join('?' for _ in ids)})"
                params = ids
            scopes = await db.execute_fetchall(
                "SELECT tc.technician_id, tc.customer_id FROM technician_customers tc"
                f" JOIN technicians t ON t.id = tc.technician_id {where}"
                " ORDER BY tc.technician_id, tc.position",
                params,
            )
        customer_ids: dict[str, list[str]] = defaultdict(list)
        for scope in scopes:
            customer_ids[scope["technician_id"]].append(scope["customer_id"])
        return [
            decode(Technician, row, customer_ids=tuple(customer_ids[row["id"]])) for row in rows
        ]

    async def technician_by_token(self, token_hash: str) -> Technician | None:
        """The enabled technician holding this token, else None."""
        found = await self._technicians(
            "look up technician token", "WHERE t.token_hash = ? AND t.disabled = 0", (token_hash,)
        )
        return found[0] if found else None

    async def technician_holding(self, token_hash: str) -> Technician | None:
        """The technician holding this token, disabled or not (the relay audits why
        it refuses one), else None."""
        found = await self._technicians(
            "look up technician token", "WHERE t.token_hash = ?", (token_hash,)
        )
        return found[0] if found else None

    async def update_technician(
        self, technician_id: str, change: TechnicianChange, *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Apply ``change`` in one transaction; False (nothing written) if unknown,
        ConflictError for a token in use or a scope naming an unknown customer."""
        sets: dict[str, Any] = {}
        for name in ("disabled", "level", "grants", "token_expires_at"):
            value = getattr(change, name)
            if value is not None:
                sets[name] = encode(value)
        if change.token_hash is not None:
            sets["token_hash"] = change.token_hash
        async with self._transaction(f"change technician {technician_id!r}") as db:
            found = list(
                await db.execute_fetchall(
                    "SELECT 1 FROM technicians WHERE id = ?", (technician_id,)
                )
            )
            if not found:
                return False
            if sets:
                assignments = ", ".join(f"{name} = :{name}" for name in sets)
                await db.execute(
                    f"UPDATE technicians SET {assignments} WHERE id = :id",
                    {**sets, "id": technician_id},
                )
            if change.customer_ids is not None:
                await db.execute(
                    "DELETE FROM technician_customers WHERE technician_id = ?", (technician_id,)
                )
                await db.executemany(
                    "INSERT INTO technician_customers (technician_id, customer_id, position)"
                    " VALUES (?, ?, ?)",
                    [(technician_id, cid, pos) for pos, cid in enumerate(change.customer_ids)],
                )
            await self._write_audit(db, audit)
            return True

    async def stamp_token_expiry(
        self, expires_at: datetime, *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """Give every token without an expiry this one; how many got it."""
        sql = "UPDATE technicians SET token_expires_at = ? WHERE token_expires_at IS NULL"
        return await self._run("stamp token expiry", sql, (encode(expires_at),), audit=audit)

    async def get_technician(self, technician_id: str) -> Technician | None:
        """By id, disabled or not."""
        found = await self._technicians("read technician", "WHERE t.id = ?", (technician_id,))
        return found[0] if found else None

    async def list_technicians(self, page: Keyset | None = None) -> list[Technician]:
        """All technicians (or one page) ordered by name."""
        return await self._technicians("list technicians", "", (), page)

    # -- enrollment tokens -------------------------------------------------------------------

    async def add_enroll_token(
        self, token: EnrollToken, token_hash: str, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert; ConflictError on a duplicate id or token, or an unknown customer."""
        values = columns(token, token_hash=token_hash)
        sql = insert_sql("enroll_tokens", values)
        await self._run("add enrollment token", sql, values, audit=audit)

    async def consume_enroll_token(
        self, token_hash: str, now: datetime, *, audit: Sequence[AuditEvent] = ()
    ) -> EnrollToken | None:
        """Use one use of a live token, returning it as it was; None (nothing
        written) if unknown or not usable."""
        async with self._transaction("use enrollment token") as db:
            # Fixed-width UTC text: comparing the strings compares the instants.
            rows = list(
                await db.execute_fetchall(
                    "SELECT * FROM enroll_tokens WHERE token_hash = ? AND revoked = 0"
                    " AND uses_left > 0 AND expires_at > ?",
                    (token_hash, encode(now)),
                )
            )
            if not rows:
                return None
            token = decode(EnrollToken, rows[0])
            await db.execute(
                "UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE id = ?", (token.id,)
            )
            await self._write_audit(db, audit)
            return token

    async def revoke_enroll_token(self, token_id: str, *, audit: Sequence[AuditEvent] = ()) -> bool:
        """Mark revoked; False (nothing written) if unknown."""
        sql = "UPDATE enroll_tokens SET revoked = 1 WHERE id = ?"
        return await self._run("revoke enrollment token", sql, (token_id,), audit=audit) > 0

    async def list_enroll_tokens(self, page: Keyset | None = None) -> list[EnrollToken]:
        """All tokens (or one page), newest first."""
        sql, params = paging.select(
            "SELECT * FROM enroll_tokens", page, ("created_at", "id"), descending=True
        )
        rows = await self._fetch("list tokens", sql, params)
        return [decode(EnrollToken, row) for row in rows]

    # -- support codes -------------------------------------------------------------------

    async def add_support_code(
        self, code: SupportCode, code_hash: str, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert; ConflictError on a duplicate id or code, or an unknown customer."""
        values = columns(code, code_hash=code_hash)
        sql = insert_sql("support_codes", values)
        await self._run("add support code", sql, values, audit=audit)

    async def consume_support_code(
        self, code_hash: str, now: datetime, *, audit: Sequence[AuditEvent] = ()
    ) -> SupportCode | None:
        """Use a live code, returning it as it was; None (nothing written) if
        unknown, used or expired."""
        async with self._transaction("use support code") as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT * FROM support_codes WHERE code_hash = ? AND used_at IS NULL"
                    " AND expires_at > ?",
                    (code_hash, encode(now)),
                )
            )
            if not rows:
                return None
            code = decode(SupportCode, rows[0])
            await db.execute(
                "UPDATE support_codes SET used_at = ? WHERE id = ?", (encode(now), code.id)
            )
            await self._write_audit(db, audit)
            return code

    # -- agents --------------------------------------------------------------------------

    async def add_agent(self, agent: Agent, *, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert; ConflictError if the id exists or the customer is unknown."""
        values = columns(agent)
        sql = insert_sql("agents", values)
        await self._run(f"add agent {agent.name!r}", sql, values, audit=audit)

    async def get_agent(self, agent_id: str) -> Agent | None:
        """By id, revoked or not."""
        rows = await self._fetch("read agent", "SELECT * FROM agents WHERE id = ?", (agent_id,))
        return decode(Agent, rows[0]) if rows else None

    async def list_agents(self, page: Keyset | None = None) -> list[Agent]:
        """All agents (or one page; revoked included) ordered by name, then id."""
        sql, params = paging.select("SELECT * FROM agents", page, ("name", "id"))
        rows = await self._fetch("list agents", sql, params)
        return [decode(Agent, row) for row in rows]

    async def revoke_agent(self, agent_id: str, *, audit: Sequence[AuditEvent] = ()) -> bool:
        """Mark revoked; False (nothing written) if unknown."""
        sql = "UPDATE agents SET revoked = 1 WHERE id = ?"
        return await self._run("revoke agent", sql, (agent_id,), audit=audit) > 0

    async def set_agent_policy(
        self, agent_id: str, policy: dict[str, Any], *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Replace an agent's policy overrides; False (nothing written) if unknown."""
        sql = "UPDATE agents SET policy = ? WHERE id = ?"
        return await self._run("set agent policy", sql, (encode(policy), agent_id), audit=audit) > 0

    async def touch_agent(self, agent_id: str, at: datetime) -> None:
        """Record that the agent linked or was seen at ``at``."""
        sql = "UPDATE agents SET last_seen_at = ? WHERE id = ?"
        await self._run("record agent contact", sql, (encode(at), agent_id))
