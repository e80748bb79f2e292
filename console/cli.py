"""``qp``: the technician's console."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from console import (
    audit_cmds,
    billing_cmds,
    company_cmds,
    diagnostics_cmds,
    help_texts,
    paging,
    technician_cmds,
)
from console.output import safe, say, show_object
from console.profile import Profile
from console.rpc import RelayClient
from shared.cli_shape import add_completion, document, finish
from shared.cli_util import run_main
from shared.durations import parse_duration
from shared.errors import UsageError

AGENT_COLUMNS = [
    ("id", "ID"),
    ("name", "Name"),
    ("customer", "Customer"),
    ("online", "Online"),
    ("revoked", "Revoked"),
    ("worst_finding", "Findings"),
    ("last_seen_at", "Last seen"),
]
SESSION_COLUMNS = [
    ("id", "ID"),
    ("agent_name", "Agent"),
    ("technician", "Technician"),
    ("kind", "Kind"),
    ("state", "State"),
    ("end_reason", "End reason"),
    ("started_at", "Started"),
    ("ended_at", "Ended"),
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qp", description="Quarkpulse technician console")
    p.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help_text: str, json_flag: bool = False) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        if json_flag:
            parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    login = cmd("login", "store the relay URL and your token")
    login.add_argument("url")
    login.add_argument("--token", required=True)
    login.add_argument(
        "--ca-file", help="the relay's CA certificate (PEM); a copy is kept in the profile"
    )
    login.add_argument(
        "--ca-pin", help="sha256:… of the relay's private CA, as the relay prints it (wss://)"
    )
    cmd("whoami", "who the relay thinks you are", True)

    customer = cmd("customer", "customers").add_subparsers(dest="action", required=True)
    c_add = customer.add_parser("add", help="add a customer")
    c_add.add_argument("name")
    c_add.add_argument("--json", action="store_true")
    c_list = customer.add_parser("list", help="list customers")
    c_list.add_argument("--json", action="store_true")
    paging.add_flags(c_list)
    c_pol = customer.add_parser("policy", help="show or change a customer's session policy")
    c_pol.add_argument("customer")
    _policy_flags(c_pol)
    billing_cmds.add_customer_parser(customer)

    enr = cmd("enroll-token", "agent enrollment tokens").add_subparsers(
        dest="action", required=True
    )
    e_new = enr.add_parser("create", help="make a token and the enroll line for the client")
    e_new.add_argument("--customer", required=True)
    e_new.add_argument("--ttl", default="24h", help="lifetime, e.g. 30m, 24h, 7d")
    e_new.add_argument("--uses", type=int, default=1)
    e_new.add_argument("--json", action="store_true")
    e_rev = enr.add_parser("revoke", help="revoke a token by id")
    e_rev.add_argument("id")
    e_rev.add_argument("--json", action="store_true")
    e_list = enr.add_parser("list", help="list tokens")
    e_list.add_argument("--json", action="store_true")
    paging.add_flags(e_list)

    paging.add_flags(cmd("agents", "agents you can reach", True))
    agent = cmd("agent", "one agent").add_subparsers(dest="action", required=True)
    a_rev = agent.add_parser("revoke", help="revoke an agent: it can no longer link")
    a_rev.add_argument("agent")
    a_rev.add_argument("--json", action="store_true")
    a_pol = agent.add_parser("policy", help="show or override an agent's session policy")
    a_pol.add_argument("agent")
    _policy_flags(a_pol)

    ex = cmd("exec", "run a command on an agent")
    ex.add_argument("agent")
    ex.add_argument("-n", "--no-stdin", action="store_true", help="do not send stdin")
    ex.add_argument("--request", help="help request or ticket this work is for")
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS…]")
    sh = cmd("shell", "interactive shell on an agent")
    sh.add_argument("agent")
    sh.add_argument("--request", help="help request or ticket this work is for")
    for name, text in (("put", "copy files to an agent"), ("get", "copy files from an agent")):
        tr = cmd(name, text)
        tr.add_argument("agent")
        tr.add_argument("paths", nargs="+", metavar="PATH", help="SOURCE… DESTINATION")
        tr.add_argument("-r", "--recursive", action="store_true", help="copy directories")
        tr.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    fw = cmd("forward", "forward local ports through an agent into its network")
    fw.add_argument("agent")
    fw.add_argument(
        "-L", dest="forwards", action="append", required=True, metavar="[BIND:]LPORT:HOST:PORT"
    )
    px = cmd("proxy", "ProxyCommand for OpenSSH (see qp ssh-config)")
    px.add_argument("agent")
    px.add_argument("--request", help="help request or ticket this work is for")
    sc = cmd("ssh-config", "OpenSSH Host blocks for your agents")
    sc.add_argument(
        "--write", action="store_true", help="write it and Include it from ~/.ssh/config"
    )
    sup = cmd("support-code", "one-time code for a client without an installed agent", True)
    sup.add_argument("--customer", required=True)
    sup.add_argument("--request", help="help request or ticket")
    sup.add_argument("--ttl", default="15m", help="lifetime, e.g. 15m")
    ses = cmd("session", "one session").add_subparsers(dest="action", required=True)
    s_end = ses.add_parser("end", help="end a running session now")
    s_end.add_argument("session")
    s_end.add_argument("--json", action="store_true")
    s_rep = ses.add_parser("replay", help="play a recorded terminal session")
    s_rep.add_argument("file", metavar="SESSION|FILE", help="a session id or an asciicast file")
    s_rep.add_argument("--speed", type=float, default=1.0)
    s_rep.add_argument("--max-wait", type=float, default=2.0, help="cap on idle pauses (s)")
    paging.add_flags(cmd("sessions", "recent sessions, newest first", True), default=200)
    diagnostics_cmds.add_parsers(sub)
    billing_cmds.add_parsers(sub)
    company_cmds.add_parsers(sub)
    technician_cmds.add_parsers(sub)
    audit_cmds.add_parsers(sub)
    add_completion(sub, "qp")
    document(p, help_texts.DOCS, help_texts.COMMON)
    finish(p)
    return p


def _policy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--consent", choices=("attended", "unattended"))
    parser.add_argument("--forwarding", choices=("off", "lan", "list"))
    parser.add_argument(
        "--allow",
        action="append",
        metavar="HOST:PORT",
        help="allowed forward destination (repeat; HOST may be a CIDR, PORT *)",
    )
    parser.add_argument("--sftp-root", help="directory SFTP is confined to")
    parser.add_argument("--record-input", choices=("yes", "no"))
    parser.add_argument(
        "--upload-recordings", choices=("yes", "no"), help="agents send terminal recordings"
    )
    parser.add_argument("--json", action="store_true")


def main(argv: list[str] | None = None) -> None:
    # Like ssh: 255 when qp itself fails, so a remote command's own status stays its own.
    run_main(_main, _parser(), argv, quiet_logs=True, failure_code=_failure_code)


def _failure_code(args: argparse.Namespace) -> int:
    return 255 if args.command in ("exec", "shell") else 1


def _main(args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "login":
        return asyncio.run(_login(args))
    if command == "logout":
        return technician_cmds.logout()
    if command == "session" and args.action == "replay" and Path(args.file).exists():
        from console.replay import replay

        return replay(Path(args.file), args.speed, args.max_wait)
    if command == "rates" and args.action == "template":
        return billing_cmds.rates_template(args)
    profile = Profile.load()
    if command == "session" and args.action == "replay":
        from console.replay import fetch_recording, replay_text

        text = asyncio.run(fetch_recording(profile, args.file))
        return replay_text(text, args.file, args.speed, args.max_wait)
    if command == "exec":
        from console.remote import run_exec

        argv = _exec_options(args)
        if not argv:
            raise UsageError("give the command after --, e.g. qp exec AGENT -- uname -a")
        return asyncio.run(
            run_exec(profile, args.agent, argv, stdin=not args.no_stdin, request=args.request)
        )
    if command == "shell":
        from console.remote import run_shell

        return asyncio.run(run_shell(profile, args.agent, request=args.request))
    if command in ("put", "get"):
        from console import files

        if len(args.paths) < 2:
            raise UsageError(f"qp {command} needs at least one source and a destination")
        move = files.put if command == "put" else files.get
        return asyncio.run(
            move(profile, args.agent, args.paths[:-1], args.paths[-1], args.recursive, args.quiet)
        )
    if command == "forward":
        from console.forward import ForwardSpec, run_forward

        specs = [ForwardSpec.parse(text) for text in args.forwards]
        return asyncio.run(run_forward(profile, args.agent, specs))
    if command == "proxy":
        from console.proxy import run_proxy

        return asyncio.run(run_proxy(profile, args.agent, args.request))
    if command == "ssh-config":
        from console.proxy import write_ssh_config

        return asyncio.run(write_ssh_config(profile, args.write))
    handler = HANDLERS.get((command, getattr(args, "action", None)))
    assert handler is not None, command
    return asyncio.run(_with_relay(profile, lambda relay: handler(relay, args)))


def _exec_options(args: argparse.Namespace) -> list[str]:
    """Options written after AGENT but before ``--`` still count as qp's own."""
    rest: list[str] = list(args.argv)
    if "--" not in rest:
        return rest
    cut = rest.index("--")
    before, command = rest[:cut], rest[cut + 1 :]
    while before:
        option = before.pop(0)
        if option in ("-n", "--no-stdin"):
            args.no_stdin = True
        elif option == "--request" and before:
            args.request = before.pop(0)
        elif option.startswith("--request="):
            args.request = option.split("=", 1)[1]
        else:
            raise UsageError(f"unknown option {option!r} for qp exec; see qp exec --help")
    return command


async def _with_relay(profile: Profile, body: Callable[[RelayClient], Awaitable[int]]) -> int:
    async with RelayClient(profile) as relay:
        return await body(relay)


async def _login(args: argparse.Namespace) -> int:
    from console.login import login

    who = await login(args.url, args.token, args.ca_file, args.ca_pin)
    say(f"logged in to {args.url.rstrip('/')} as {who['name']} ({who['role']})")
    _warn_expiry(who)
    return 0


def _warn_expiry(who: dict[str, Any]) -> None:
    """The relay's line about a token expiring within the week, if it sent one."""
    if who.get("token_warning"):
        say(f"warning: {safe(who['token_warning'])}", err=True)


Handler = Callable[[RelayClient, argparse.Namespace], Awaitable[int]]


async def _whoami(relay: RelayClient, args: argparse.Namespace) -> int:
    who = await relay.call("whoami")
    show_object(who, args.json)
    _warn_expiry(who)
    return 0


async def _customer_add(relay: RelayClient, args: argparse.Namespace) -> int:
    show_object(await relay.call("customer.add", name=args.name), args.json)
    return 0


async def _customer_list(relay: RelayClient, args: argparse.Namespace) -> int:
    cols = [("id", "ID"), ("name", "Name"), ("created_at", "Created")]
    return await paging.show_list(relay, args, "customer.list", cols, "customers")


async def _enroll_create(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call(
        "enroll_token.create", customer=args.customer, ttl=parse_duration(args.ttl), uses=args.uses
    )
    if args.json:
        show_object(value, True)
    else:
        say(
            f"token {value['id']} for {value['customer']}: {value['uses']} use(s), "
            f"expires {value['expires_at']}"
        )
        say("give the client this line:")
        say(f"  {value['command']}")
    return 0


async def _enroll_revoke(relay: RelayClient, args: argparse.Namespace) -> int:
    show_object(await relay.call("enroll_token.revoke", id=args.id), args.json)
    return 0


async def _enroll_list(relay: RelayClient, args: argparse.Namespace) -> int:
    cols = [
        ("id", "ID"),
        ("customer", "Customer"),
        ("uses_left", "Uses left"),
        ("expires_at", "Expires"),
        ("usable", "Usable"),
    ]
    return await paging.show_list(relay, args, "enroll_token.list", cols, "enrollment tokens")


async def _agents(relay: RelayClient, args: argparse.Namespace) -> int:
    return await paging.show_list(relay, args, "agent.list", AGENT_COLUMNS, "agents")


async def _agent_revoke(relay: RelayClient, args: argparse.Namespace) -> int:
    show_object(await relay.call("agent.revoke", agent=args.agent), args.json)
    return 0


async def _sessions(relay: RelayClient, args: argparse.Namespace) -> int:
    return await paging.show_list(relay, args, "session.list", SESSION_COLUMNS, "sessions")


def _policy_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.consent:
        changes["consent"] = args.consent
    if args.forwarding:
        changes["forwarding"] = args.forwarding
    if args.allow:
        changes["forward_allow"] = args.allow
    if args.sftp_root:
        changes["sftp_root"] = args.sftp_root
    if args.record_input:
        changes["record_input"] = args.record_input == "yes"
    if args.upload_recordings:
        changes["upload_recordings"] = args.upload_recordings == "yes"
    return changes


async def _policy(relay: RelayClient, args: argparse.Namespace) -> int:
    target = {"agent": args.agent} if args.command == "agent" else {"customer": args.customer}
    changes = _policy_changes(args)
    if changes:
        value = await relay.call("policy.set", policy=changes, **target)
    else:
        value = await relay.call("policy.show", **target)
    if args.json:
        show_object(value, True)
    else:
        say(f"policy of {value['subject']}:")
        shown = dict(value["policy"])
        for key, pinned in (value.get("pinned") or {}).items():
            # The client's own setting: the relay's policy cannot change it.
            shown[key] = f"{pinned} (pinned by the client)"
        show_object(shown, False)
    return 0


async def _support_code(relay: RelayClient, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"customer": args.customer, "ttl": parse_duration(args.ttl)}
    if args.request:
        params["request"] = args.request
    value = await relay.call("support_code.create", **params)
    if args.json:
        show_object(value, True)
    else:
        say(
            f"support code {value['code']} for {value['customer']}, single use, "
            f"expires {value['expires_at']}"
        )
        say("the client runs:")
        say(f"  {value['command']}")
    return 0


async def _session_end(relay: RelayClient, args: argparse.Namespace) -> int:
    show_object(await relay.call("session.end", session=args.session), args.json)
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {
    **diagnostics_cmds.HANDLERS,
    **billing_cmds.HANDLERS,
    **company_cmds.HANDLERS,
    **technician_cmds.HANDLERS,
    **audit_cmds.HANDLERS,
    ("customer", "policy"): _policy,
    ("agent", "policy"): _policy,
    ("support-code", None): _support_code,
    ("session", "end"): _session_end,
    ("whoami", None): _whoami,
    ("customer", "add"): _customer_add,
    ("customer", "list"): _customer_list,
    ("enroll-token", "create"): _enroll_create,
    ("enroll-token", "revoke"): _enroll_revoke,
    ("enroll-token", "list"): _enroll_list,
    ("agents", None): _agents,
    ("agent", "revoke"): _agent_revoke,
    ("sessions", None): _sessions,
}
