"""``qp-agent``: enroll this machine, run the agent, show its status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path

from agent.enroll import enroll
from agent.files import AgentFiles, default_data_dir
from agent.link import AgentRunner
from shared.cli_util import run_main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qp-agent", description="Quarkpulse support agent")
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    enr = sub.add_parser("enroll", help="enroll this machine with a relay")
    enr.add_argument("url", help="relay URL, ws:// or wss://")
    enr.add_argument("--token", required=True, help="one-time enrollment token")
    enr.add_argument("--name", help="name shown to technicians (default: host name)")
    enr.add_argument("--ca-file", help="extra CA certificate to trust for wss://")
    enr.add_argument("--data", type=Path, default=None)
    run = sub.add_parser("run", help="keep the link to the relay and serve sessions")
    run.add_argument("--data", type=Path, default=None)
    st = sub.add_parser("status", help="show this agent's identity and link state")
    st.add_argument("--data", type=Path, default=None)
    st.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> None:
    run_main(_main, _parser(), argv)


def _main(args: argparse.Namespace) -> int:
    files = AgentFiles(args.data or default_data_dir())
    if args.command == "enroll":
        done = asyncio.run(enroll(files, args.url, args.token, args.name, args.ca_file))
        print(
            f"enrolled as {done.name} ({done.agent_id}); start it with: qp-agent run"
            + (f" --data {args.data}" if args.data else "")
        )
        return 0
    if args.command == "run":
        return asyncio.run(_run(files))
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
    runner = AgentRunner(files)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runner.run_forever(stop)
    return 0
