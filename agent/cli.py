"""``qp-agent``: enroll this machine, run the agent, show its status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from agent import help_texts
from agent.audit import AgentAudit
from agent.control import control_call
from agent.enroll import enroll
from agent.files import AgentFiles, default_data_dir
from agent.link import AgentRunner
from agent.pin import read_pin, set_pin
from shared.cli_shape import add_completion, document, finish
from shared.cli_util import run_main
from shared.errors import QPError, UsageError
from shared.instance_lock import lock_data_dir

#: In the data directory; holds the pid of the ``qp-agent run`` using it.
LOCK_FILE = "agent.lock"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qp-agent", description="Quarkpulse support agent")
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    enr = sub.add_parser("enroll", help="enroll this machine with a relay")
    enr.add_argument("url", help="relay URL, ws:// or wss://")
    enr.add_argument("--token", required=True, help="one-time enrollment token")
    enr.add_argument("--name", help="name shown to technicians (default: host name)")
    _trust_flags(enr)
    enr.add_argument("--data", type=Path, default=None)
    run = sub.add_parser("run", help="keep the link to the relay and serve sessions")
    run.add_argument("--data", type=Path, default=None)
    st = sub.add_parser("status", help="show this agent's identity and link state")
    st.add_argument("--data", type=Path, default=None)
    st.add_argument("--json", action="store_true")
    ss = sub.add_parser("sessions", help="who is connected to this machine now")
    ss.add_argument("--data", type=Path, default=None)
    ss.add_argument("--json", action="store_true")
    end = sub.add_parser("end", help="end a session now (all of them without SESSION)")
    end.add_argument("session", nargs="?")
    end.add_argument("--data", type=Path, default=None)
    con = sub.add_parser("consent", help="answer a technician's request to connect")
    con.add_argument("session", nargs="?", help="default: the only pending request")
    answer = con.add_mutually_exclusive_group()
    answer.add_argument("--allow", action="store_true")
    answer.add_argument("--deny", action="store_true")
    con.add_argument("--data", type=Path, default=None)
    log = sub.add_parser("log", help="what technicians did on this machine")
    log.add_argument("--data", type=Path, default=None)
    log.add_argument("-n", "--lines", type=int, default=50)
    log.add_argument("--json", action="store_true")
    dg = sub.add_parser("diagnose", help="check this machine now (works without a relay)")
    dg.add_argument("--data", type=Path, default=None)
    dg.add_argument("--json", action="store_true")
    hp = sub.add_parser("help", help="ask the IT company for help, with a diagnostics snapshot")
    hp.add_argument("text", nargs="?", help='what is wrong, e.g. "printer offline"')
    hp.add_argument("--urgent", action="store_true")
    hp.add_argument("--status", action="store_true", help="show your requests and their state")
    hp.add_argument("--data", type=Path, default=None)
    hp.add_argument("--json", action="store_true")
    pol = sub.add_parser("policy", help="show or pin this machine's own consent policy")
    pol.add_argument(
        "--consent",
        choices=("attended", "relay"),
        help="attended: always ask me first, whatever the relay says; relay: the relay decides",
    )
    pol.add_argument("--data", type=Path, default=None)
    pol.add_argument("--json", action="store_true")
    sup = sub.add_parser("support", help="one-off help with a support code; nothing installed")
    sup.add_argument("--relay", required=True, help="relay URL the technician gave you")
    sup.add_argument("--code", required=True)
    _trust_flags(sup)
    sup.add_argument(
        "--no-gateway-probe",
        action="store_true",
        help="diagnostics leave the default gateway alone (where probing it is unwelcome)",
    )
    un = sub.add_parser("uninstall", help="unlink from the relay, remove the service and data")
    un.add_argument("--data", type=Path, default=None)
    un.add_argument("--keep-log", type=Path, metavar="FILE", help="save the audit log here first")
    un.add_argument(
        "--offline",
        action="store_true",
        help="no running agent: remove locally; the IT company must revoke it themselves",
    )
    un.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_completion(sub, "qp-agent")
    document(parser, help_texts.DOCS, help_texts.COMMON)
    finish(parser)
    return parser


def _trust_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ca-file", help="the relay's CA certificate (PEM); a copy is kept with the agent"
    )
    parser.add_argument(
        "--ca-pin", help="sha256:… of the relay's private CA, as the relay prints it (wss://)"
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # The person at a support session's keyboard reads our lines, not log noise.
    run_main(_main, _parser(), argv, quiet_logs="support" in args[:2])


def _main(args: argparse.Namespace) -> int:
    if args.command == "support":
        from agent.support import run_support

        return asyncio.run(
            run_support(args.relay, args.code, not args.no_gateway_probe, args.ca_file, args.ca_pin)
        )
    files = AgentFiles(args.data or default_data_dir())
    if args.command == "enroll":
        done = asyncio.run(
            enroll(files, args.url, args.token, args.name, args.ca_file, args.ca_pin)
        )
        print(
            f"enrolled as {done.name} ({done.agent_id}); start it with: qp-agent run"
            + (f" --data {args.data}" if args.data else "")
        )
        return 0
    if args.command == "run":
        return asyncio.run(_run(files))
    if args.command in ("sessions", "end", "consent"):
        return asyncio.run(_local(files, args))
    if args.command == "diagnose":
        return asyncio.run(_diagnose(files, args.json))
    if args.command == "help":
        return asyncio.run(_help(files, args))
    if args.command == "log":
        return _log(files, args)
    if args.command == "uninstall":
        return _uninstall(files, args)
    if args.command == "policy":
        return asyncio.run(_policy(files, args))
    config = files.load_config()
    status = files.read_status()
    info = {
        "agent_id": config["agent_id"],
        "name": config.get("name"),
        "relay_url": config["relay_url"],
        "data": str(files.root),
        "online": bool(status.get("online")) and _alive(status.get("pid")),
        "since": status.get("since"),
    }
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            print(f"{key:10} {value}")
    return 0


async def _local(files: AgentFiles, args: argparse.Namespace) -> int:
    """Talk to the running agent over its local control socket."""
    sock = files.control_socket
    if args.command == "sessions":
        reply = await control_call(sock, {"cmd": "sessions"})
        if args.json:
            print(json.dumps(reply["sessions"]))
        elif not reply["sessions"]:
            print("no technician is connected")
        for s in reply["sessions"] if not args.json else []:
            print(
                f"{s['session']}  {safe(s['technician'])}  {s['kind']}  {s['state']}  "
                f"since {s['since']}  {safe(s['request'])}"
            )
        return 0
    if args.command == "end":
        reply = await control_call(sock, {"cmd": "end", "session": args.session})
        print("ended " + ", ".join(reply["ended"]))
        return 0
    pending = (await control_call(sock, {"cmd": "pending"}))["pending"]
    if args.session:
        pending = [p for p in pending if p["session"] == args.session]
    if not pending:
        print("no request is waiting for your consent")
        return 1 if args.session else 0
    request = pending[0]
    if not (args.allow or args.deny):
        print(safe(request["question"]) + " [y/N] ", end="", flush=True)
        approve = sys.stdin.readline().strip().lower() in ("y", "yes")
    else:
        approve = bool(args.allow)
    await control_call(sock, {"cmd": "answer", "session": request["session"], "approve": approve})
    print(("allowed " if approve else "denied ") + request["session"])
    return 0


async def _policy(files: AgentFiles, args: argparse.Namespace) -> int:
    """``qp-agent policy [--consent attended|relay]``: the client's consent pin."""
    files.load_config()  # an enrolled agent's data directory, or one clear line
    if args.consent is not None:
        set_pin(files, None if args.consent == "relay" else args.consent)
        # A running agent tells the relay at once; a stopped one does at its next link.
        with contextlib.suppress(OSError, QPError):
            await control_call(files.control_socket, {"cmd": "pin_changed"}, timeout=5)
    pin = read_pin(files)
    if args.json:
        print(json.dumps({"consent_pin": pin}))
    elif pin is None:
        print("consent: as the relay's policy says (not pinned on this machine)")
    else:
        print(f"consent: {pin}, pinned on this machine: every session asks you first")
    return 0


async def _diagnose(files: AgentFiles, as_json: bool) -> int:
    from rich.console import Console

    from agent.snapshots import options_from, snapshot
    from shared.diagnostics import to_json
    from shared.diagnostics_view import render_snapshot

    config = files.load_config() if files.enrolled() else {}
    snap = await snapshot(options_from(config, config.get("relay_url")))
    if as_json:
        print(json.dumps(to_json(snap)))
    else:
        render_snapshot(Console(), snap)
    return 0


async def _help(files: AgentFiles, args: argparse.Namespace) -> int:
    sock = files.control_socket
    if args.status:
        reply = await control_call(sock, {"cmd": "help_status"}, timeout=30)
        requests = reply["value"] or []
        if args.json:
            print(json.dumps(requests))
        elif not requests:
            print("you have not asked for help yet")
        for r in requests if not args.json else []:
            urgent = " (urgent)" if r["urgent"] else ""
            print(f"{r['label']}  {r['state']:<11}  {r['created_at']}  {safe(r['text'])}{urgent}")
            if r.get("resolution"):
                print(f"    resolution: {safe(r['resolution'])}")
        return 0
    if not args.text or not args.text.strip():
        raise UsageError('say what is wrong, e.g. qp-agent help "printer offline"')
    reply = await control_call(
        sock, {"cmd": "help", "text": args.text, "urgent": args.urgent}, timeout=30
    )
    value = reply["value"]
    if args.json:
        print(json.dumps(value))
    else:
        print(
            f"help request {value['label']} sent; a technician will pick it up "
            "(see: qp-agent help --status)"
        )
    return 0


def safe(text: object) -> str:
    """Technician-supplied text, with nothing the terminal would interpret."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def _log(files: AgentFiles, args: argparse.Namespace) -> int:
    events = AgentAudit(files.audit_log).read(args.lines)
    if args.json:
        print(json.dumps(events))
        return 0
    if not events:
        print("nothing recorded yet")
    for event in events:
        rest = " ".join(
            f"{k}={safe(v)}" for k, v in event.items() if k not in ("at", "event", "session")
        )
        print(
            f"{event.get('at')}  {safe(event.get('session'))}  {safe(event.get('event'))}  {rest}"
        )
    return 0


def _uninstall(files: AgentFiles, args: argparse.Namespace) -> int:
    from agent import uninstall

    config = files.load_config()
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("uninstall removes this agent for good; add --yes to confirm")
        print(f"remove agent {safe(config.get('name'))} and {files.root}? [y/N] ", end="")
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    status = files.read_status()
    running = _alive(status.get("pid"))
    if running:
        asyncio.run(uninstall.unlink(files))
        print(f"the relay forgot this machine ({config['agent_id']})")
    elif not args.offline:
        raise UsageError(
            "the agent is not running, so the relay cannot be told: start it "
            "(qp-agent run) and try again, or add --offline"
        )
    else:
        print(f"not linked: ask your IT company to revoke {config['agent_id']}")
    uninstall.remove_service(print)
    if running:
        uninstall.wait_for_exit(status.get("pid"))
    if args.keep_log:
        uninstall.keep_log(files, args.keep_log)
        print(f"kept the log of what technicians did here in {args.keep_log}")
    uninstall.remove_data(files)
    print(f"removed {files.root}")
    return 0


def _alive(pid: object) -> bool:
    """Whether the ``qp-agent run`` that wrote the status file is still running."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user (a service)
    return True


async def _run(files: AgentFiles) -> int:
    files.load_config()  # not enrolled: say so before creating anything
    # Before anything touches the directory: a second agent would remove the first
    # one's control socket, and the two would take turns on the relay link.
    lock = lock_data_dir(files.root, LOCK_FILE, "qp-agent run")
    try:
        await _serve(files)
    finally:
        lock.release()
    return 0


async def _serve(files: AgentFiles) -> None:
    from agent.consent import ConsentBroker, desktop_notify

    # A service agent asks through `qp-agent consent` and a desktop notification.
    runner = AgentRunner(files, ConsentBroker(notify=desktop_notify))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.run_forever(stop)
