"""Reading a PDF as a person would: its text, by ``pdftotext`` (Debian: poppler-utils).

Without the tool a test skips, except under CI (``CI`` set), which installs it in
``.ci/run``: there a missing ``pdftotext`` is a failure, so the PDF checks always run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from harness import timeout

#: ``€ 1.234,56`` / ``€ -1.234,56`` as the invoice prints money
MONEY = re.compile(r"€\s*(-?\d{1,3}(?:\.\d{3})*,\d{2})")


def pdftotext() -> str:
    """The path of ``pdftotext``; skips the test when it is missing outside CI."""
    found = shutil.which("pdftotext")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext is missing (apt-get install poppler-utils)", pytrace=False)
        pytest.skip("pdftotext is missing (apt-get install poppler-utils)")
    return found


def pdf_text(pdf: bytes | Path, *, layout: bool = True) -> str:
    """The text of ``pdf``: laid out in rows as on the page (``pdftotext -layout``),
    or with ``layout=False`` in reading order, so a wrapped cell reads as one text."""
    tool = pdftotext()
    with tempfile.TemporaryDirectory() as folder:
        path = pdf if isinstance(pdf, Path) else Path(folder) / "doc.pdf"
        if not isinstance(pdf, Path):
            path.write_bytes(pdf)
        out = subprocess.run(
            [tool, *(["-layout"] if layout else []), "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            check=True,
            timeout=timeout(30),
        )
    return out.stdout.decode("utf-8")


def words(pdf: bytes | Path) -> str:
    """The text of ``pdf`` in reading order, every run of white space one space."""
    return " ".join(pdf_text(pdf, layout=False).split())


def euros(text: str) -> list[Decimal]:
    """Every amount of money in ``text``, in order."""
    return [Decimal(m.replace(".", "").replace(",", ".")) for m in MONEY.findall(text)]
