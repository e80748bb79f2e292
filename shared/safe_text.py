"""Text from a peer made safe to show on a terminal: the one sanitising helper.

Agents run on the client's machine, so every string they send (a host name, an OS
string, a decline reason, a help text, diagnostics) is written by someone we do not
trust, and the relay passes much of it on. Printed raw, such text can set the
window title, write the technician's clipboard (OSC 52), erase lines and fake new
ones, or reorder what is shown with bidi overrides.

:func:`clean` removes whole escape sequences (CSI, OSC, DCS/SOS/PM/APC strings and
two-byte ESC forms, 7-bit and 8-bit), then every remaining C0/C1 control, surrogate
and bidi embedding/override/isolate/mark. Line breaks and tabs become spaces unless
the field is meant to have several lines (``multiline=True`` keeps ``\\n``; a bare
``\\r``, which would move the cursor back over a line, never survives). Markup is a
printer's concern: the console prints cleaned text with ``print`` or as rich
``Text``, neither of which parses ``[red]``.
"""

from __future__ import annotations

import re
from typing import Any

# CSI ... final; OSC ... BEL/ST; DCS/SOS/PM/APC ... ST; ESC + intermediates + final;
# and their 8-bit C1 forms. An unterminated string runs to the end of the text.
_ESCAPE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]?                          # CSI
    | \x9b[0-?]*[ -/]*[@-~]?                          # 8-bit CSI
    | (?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC (title, OSC 52, links)
    | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?  # DCS, SOS, PM, APC
    | \x1b[ -/]*[0-~]?                                # other ESC forms, or a lone ESC
    """,
    re.VERBOSE,
)

#: Characters that break or move a line: spaces on one line.
_LINE_BREAKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029"
_DROPPED = [
    *range(0x20),
    *range(0x7F, 0xA0),
    *range(0xD800, 0xE000),
    0x061C,  # Arabic letter mark
    0x200E,  # left-to-right mark
    0x200F,  # right-to-left mark
    *range(0x202A, 0x202F),  # embeddings and overrides
    *range(0x2066, 0x206A),  # isolates
]
_ONE_LINE: dict[int, str | None] = {code: None for code in _DROPPED}
_ONE_LINE.update({ord(ch): " " for ch in _LINE_BREAKS})
_MULTI_LINE: dict[int, str | None] = {**_ONE_LINE, ord("\n"): "\n"}


def clean(value: Any, multiline: bool = False, limit: int | None = None) -> str:
    """``value`` as text with no escape sequence, control or bidi character.

    ``None`` becomes ``""``; other values go through ``str``. ``limit`` cuts the
    result (ending in ``…``)."""
    if value is None:
        return ""
    text = _ESCAPE.sub("", str(value))
    if multiline:
        text = text.replace("\r\n", "\n")
    text = text.translate(_MULTI_LINE if multiline else _ONE_LINE)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def is_clean(text: str, multiline: bool = False) -> bool:
    """True when ``text`` holds nothing :func:`clean` would change."""
    return clean(text, multiline) == text
