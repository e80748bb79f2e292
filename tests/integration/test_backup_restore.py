"""``qp-relay backup`` while a session runs, ``qp-relay restore`` into a new data
directory, ``qp-relay serve`` on it: logins, agents, time entries and invoices are
all there, every file private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from harness import BIN, World
from tests.integration.billing_world import (
    DUTCH,
    FLAT_CARD,
    add_manual,
    import_card,
    invoice,
    start_office,
)
from tests.integration.ops_helpers import HeldSession, serve
from tests.integration.toolkit_helpers import one_line


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of everything below ``root``."""
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


async def test_a_backup_taken_during_a_session_restores_and_serves(world: World) -> None:
    start_office(world)
    world.qp("customer", "add", "Acme")
    world.qp("customer", "billing", "Acme", *DUTCH)
    import_card(world, FLAT_CARD)
    alice = world.technician("alice", "Acme")
    agent_id, agent_data = world.enroll("Acme", "bak-pc")
    world.start_agent(agent_data)
    world.qp("exec", "bak-pc", "--", "true", home="alice")
    made = invoice(world, "Acme", "2025-03", add_manual(world, "Acme", "2025-03-10 10:00", 60))
    (world.relay_data / "recordings").mkdir(mode=0o700, exist_ok=True)
    (world.relay_data / "recordings" / "ses-example.cast").write_text('{"version": 2}\n')

    agents = world.qp_json("agents")
    entries = {e["id"]: e for e in world.qp_json("time", "--customer", "Acme")}
    invoices = world.qp_json("invoice", "list")
    assert [a["id"] for a in agents] == [agent_id] and invoices
    assert {e["status"] for e in entries.values()} >= {"invoiced"}

    held = await HeldSession.open(world, agent_id, home="alice")
    backup = world.root / "backup"
    out = world.run([str(BIN / "qp-relay"), "backup", "--data", str(world.relay_data), str(backup)])
    assert out.stdout.decode().startswith("backed up relay rly-")
    assert (await held.run("echo still-here")).strip() == "still-here"  # not disturbed
    await held.close()

    manifest = json.loads((backup / "BACKUP.json").read_text())
    expected = {"relay.db", "host_ca", "user_ca", "relay.toml", ".initialised"}
    assert expected | {"recordings/ses-example.cast"} <= set(manifest["files"])
    for name, mode in _modes(backup).items():
        assert mode == (0o700 if (backup / name).is_dir() else 0o600), name

    restored = world.root / "restored"
    world.run([str(BIN / "qp-relay"), "restore", str(backup), str(restored)])
    assert all(m in (0o600, 0o700) for m in _modes(restored).values())
    again = world.run([str(BIN / "qp-relay"), "restore", str(backup), str(restored)], check=False)
    assert again.returncode == 1 and "not empty" in one_line(again.stderr)  # never overwrites

    serve(world, data=restored)
    world.login(world.admin_token, home="admin2")
    world.login(alice, home="alice2")
    assert world.qp_json("whoami", home="alice2")["name"] == "alice"
    assert [(a["id"], a["name"]) for a in world.qp_json("agents", home="admin2")] == [
        (a["id"], a["name"]) for a in agents
    ]
    now = {e["id"]: e for e in world.qp_json("time", "--customer", "Acme", home="admin2")}
    assert set(entries) <= set(now)
    for entry_id, entry in entries.items():
        if entry["status"] == "invoiced":
            assert now[entry_id] == entry  # an invoiced entry never changes
        else:  # the session running at backup time was recovered and merged into it
            assert set(entry["session_ids"]) <= set(now[entry_id]["session_ids"])
            assert now[entry_id]["customer"] == entry["customer"]
    assert world.qp_json("invoice", "list", home="admin2") == invoices
    shown = world.qp("invoice", "export", made["number"], "--format", "ubl", home="admin2")
    assert made["number"].encode() in shown.stdout
