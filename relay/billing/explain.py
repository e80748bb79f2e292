"""Render an entry's explanation (see :mod:`relay.billing.compute`) as text.

It reads only the JSON-able explanation, so a stored entry can be explained again
without the rate card or a recomputation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relay.billing.facts import MANUAL_PREFIX


def _dur(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"


def _when(text: str) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")


def _local(text: str) -> str:
    when = datetime.fromisoformat(text)
    offset = when.isoformat()[-6:]
    return f"{when:%a %Y-%m-%d %H:%M:%S}{offset}"


def _names(item: dict[str, Any]) -> str:
    return ", ".join(
        f"holiday ({item['holiday']})" if n == "holiday" else n for n in item["windows"]
    )


def _pick(pick: dict[str, Any]) -> str:
    return f"{pick['rule']}: {pick['key']}" if pick["key"] else pick["rule"]


def render_text(explanation: dict[str, Any]) -> str:
    """Lines that walk through each step of the computation, figures included."""
    e = explanation
    sessions = e["facts"]["sessions"]
    first, ctx = sessions[0], e["facts"]["context"]
    card, money = e["card"], e["amount"]["currency"]
    lines = [
        f"Entry for customer {first['customer_id']}: technician {first['technician_id']} "
        f"(level {ctx['technician_level']}) on agent {first['agent_id']}, "
        f"request {first['request'] or '(none)'}",
        f"Service {ctx['service_type']}, complexity {ctx['complexity']}"
        + (", urgent" if ctx["urgent"] else ""),
        f"Rate card {card['name']!r} effective {card['effective_from']} "
        f"(digest {card['digest']}); local times in {card['timezone']}",
        "Sessions (UTC):",
    ]
    for s in e["sessions"]["billed"]:
        lines.append(
            f"  {s['session_id']}: {_when(s['from'])} to {_when(s['to'])}, {_dur(s['seconds'])}"
        )
        for quiet in s.get("quiet", []):
            if quiet["excluded_seconds"]:
                lines.append(
                    f"    no activity from {_dur(quiet['from_second'])} to "
                    f"{_dur(quiet['to_second'])} ({_dur(quiet['seconds'])}): "
                    f"{_dur(quiet['excluded_seconds'])} beyond the "
                    f"{s['threshold_minutes']}-minute threshold excluded as idle"
                )
        for run in s["idle_runs"]:
            if run["excluded_minutes"]:
                lines.append(
                    f"    idle minutes {run['first_minute']}-{run['last_minute']} "
                    f"({run['minutes']} min): {run['excluded_minutes']} min beyond the "
                    f"{s['threshold_minutes']}-minute threshold excluded"
                )
    between = e["merge"].get("between", [])
    for b in between:
        excluded = b["seconds"] - b["kept_seconds"]
        lines.append(
            f"  between sessions {_dur(b['seconds'])}: counted as work"
            + (f", {_dur(excluded)} beyond the idle threshold excluded" if excluded else "")
        )
    failed = e["sessions"]["failed_connects"]
    if failed and all(s["session_id"].startswith(MANUAL_PREFIX) for s in failed):
        lines.append("  the manual work is shorter than the grace period: not billed")
    elif failed:
        shown = "sessions" if between or len(failed) > 1 else "session"
        lines.append(
            f"  the {shown} together are shorter than the grace period: nothing billed "
            "(a reconnect within the merge window joins this entry)"
        )
    merge = e["merge"]
    if merge["session_count"] > 1:
        gaps = ", ".join(_dur(g) if g >= 0 else "overlap" for g in merge["gaps_seconds"])
        lines.append(
            f"Merged {merge['session_count']} sessions: gaps {gaps}, each under the "
            f"{merge['window_minutes']['value']}-minute merge window "
            f"({_pick(merge['window_minutes'])}); the minimum is charged once"
        )
    t = e["time"]
    lines.append(
        f"Time: {_dur(t['span_seconds'])} in sessions - {_dur(t['idle_excluded_seconds'])} "
        f"idle excluded = {_dur(t['actual_seconds'])} actual ({t['actual_minutes']} min)"
    )
    r = e["rounding"]
    rule = r["rule"]
    lines.append(
        f"Rounding: minimum {rule['minimum_minutes']['value']} min "
        f"({rule['minimum_minutes']['key']}), steps of {rule['increment_minutes']['value']} min "
        f"({rule['increment_minutes']['key']}), mode {rule['mode']['value']} "
        f"({rule['mode']['key']}), grace {rule['grace_seconds']['value']} s "
        f"({rule['grace_seconds']['key']}) -> {r['merged_minutes']} min"
    )
    if r["capped_at_separate"]:
        lines.append(
            f"  capped at {r['billable_minutes']} min, what the sessions bill separately "
            f"({' + '.join(str(m) for m in r['separate_minutes'])})"
        )
    lines.append(f"Billable: {r['billable_minutes']} min")
    rate = e["rate"]
    lines.append(f"Rate: {money} {rate['base']['value']}/h ({_pick(rate['base'])})")
    won = False
    for c in rate["considered"]:
        if c["key"] == rate["base"]["key"]:
            won = True
        elif not won:
            lines.append(f"  more specific, not set: {c['key']}")
        elif c["value"] is not None:
            lines.append(f"  less specific, not used: {c['key']} = {c['value']}")
    lines.append(
        f"  x {rate['multiplier']['value']} for {rate['complexity']} "
        f"({_pick(rate['multiplier'])}) = {money} {rate['hourly_rate']}/h"
    )
    sur = e["surcharges"]
    urgent = ""
    if sur["urgent"]["applies"]:
        urgent = f"; urgent +{sur['urgent']['value']} % on every minute"
    lines.append(f"Time windows in local time ({sur['combine']} of overlapping windows{urgent}):")
    for seg in sur["segments"]:
        lines.append(
            f"  {_local(seg['local_from'])} to {_local(seg['local_to'])}: "
            f"{_dur(seg['seconds'])} {_names(seg) or 'no window'} +{seg['percent']} %"
        )
    adjust = sur["rounding_adjustment_seconds"]
    if adjust > 0:
        lines.append(f"Rounding adds {_dur(adjust)}, billed at the entry's lowest surcharge")
    elif adjust < 0:
        lines.append(f"Rounding removes {_dur(-adjust)}, taken from the highest surcharge")
    lines.append("Billed time by surcharge:")
    for b in sur["billed"]:
        lines.append(
            f"  {_dur(b['billed_seconds'])} at +{b['percent']} % "
            f"({_names(b) or 'no window'}; {_dur(b['actual_seconds'])} actual)"
        )
    disc = e["discount"]
    lines.append(f"Discount: {disc['value']} % ({_pick(disc)})")
    a = e["amount"]
    lines.append(
        f"Amount: sum of billed hours x {money} {rate['hourly_rate']} x (100 % + surcharge) "
        f"x (100 % - {disc['value']} %) = {a['exact']}"
    )
    if a["capped_at_separate"]:
        lines.append(
            f"  {a['merged']} capped at what the sessions bill separately "
            f"({' + '.join(a['separate'])})"
        )
    lines.append(f"  = {money} {a['value']} (rounded half-up to cents)")
    if e.get("not_billed"):
        lines.append(f"Not billed: {e['not_billed']}")
    return "\n".join(lines)
