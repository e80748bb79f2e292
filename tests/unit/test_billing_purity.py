"""The billing core does no I/O: it imports nothing that could, and calls no
``open``/``print``/``input``. Another layer feeds it facts and stores results."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BILLING = Path(__file__).resolve().parents[2] / "relay" / "billing"
CORE = [
    "compute", "document", "explain", "facts", "holidays_nl", "idle", "merge", "ratecard",
    "ratecard_export", "ratecard_parse", "resolve", "rounding", "spans", "surcharges",
    "toml_lines",
]  # fmt: skip
ALLOWED = {
    "__future__", "collections.abc", "dataclasses", "datetime", "decimal", "functools",
    "hashlib", "json", "re", "tomllib", "typing", "zoneinfo",
    "shared.clock", "shared.errors", "relay.model",
}  # fmt: skip


@pytest.mark.parametrize("module", CORE)
def test_billing_core_module_does_no_io(module: str) -> None:
    path = BILLING / f"{module}.py"
    source = path.read_text()
    assert len(source.splitlines()) < 600, f"{path.name} has grown past ~600 lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("open", "print", "input"), path.name
            continue
        for name in names:
            assert name in ALLOWED or name.startswith("relay.billing."), f"{path.name}: {name}"
