"""``qp-relay``: initialise a relay data directory and serve it."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import os
import signal
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit

from relay import help_texts, ops
from relay.app import Listen, Relay
from relay.init import (
    SETTINGS_FILE,
    InitResult,
    init_relay,
    require_initialised,
    rotate_admin_token,
)
from relay.settings import load_settings
from relay.tls import configured, given_files, server_context
from shared import logs
from shared.cli_shape import add_completion, document, finish
from shared.cli_util import run_main
from shared.clock import iso
from shared.errors import ConfigError, UsageError
from shared.instance_lock import lock_data_dir

#: In the data directory; holds the pid of the ``qp-relay serve`` using it.
LOCK_FILE = "relay.lock"

log = logging.getLogger("qp.relay")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qp-relay", description="Quarkpulse relay")
    parser.add_argument("--debug", action="store_true", help="verbose logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a relay data directory")
    init.add_argument("--data", required=True, type=Path)
    init.add_argument("--public-url", default="", help="ws(s):// URL agents and technicians dial")
    init.add_argument(
        "--tls-names",
        default="",
        help="make a private CA and a server certificate for these names, "
        "e.g. relay.example.com,127.0.0.1",
    )
    init.add_argument("--tls-cert", type=Path, help="your certificate chain (PEM) for serve")
    init.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    init.add_argument("--tls-ca", type=Path, help="the private CA that issued it (for --ca-pin)")
    init.add_argument("--json", action="store_true")
    srv = sub.add_parser("serve", help="run the relay")
    srv.add_argument("--data", required=True, type=Path)
    srv.add_argument("--listen", default="127.0.0.1:8443", help="HOST:PORT (port 0 = any)")
    srv.add_argument("--tls-cert", type=Path, help="certificate chain (default: relay.toml)")
    srv.add_argument("--tls-key", type=Path, help="its private key (default: relay.toml)")
    srv.add_argument(
        "--insecure-plain-ws",
        action="store_true",
        help="allow plain ws:// on a non-loopback address (behind a TLS proxy only)",
    )
    tok = sub.add_parser(
        "admin-token", help="issue a new admin token on this machine (lost or leaked token)"
    )
    tok.add_argument("--data", required=True, type=Path)
    tok.add_argument("--rotate", action="store_true", required=True, help="make the new token")
    tok.add_argument("--name", default="admin", help="which admin (default: admin)")
    tok.add_argument("--json", action="store_true")
    srv.add_argument("--log-format", choices=logs.FORMATS, default="text", help="log lines as")
    srv.add_argument("--log-level", choices=logs.LEVELS, default="info", help="least severe logged")
    ops.add_parsers(sub)
    add_completion(sub, "qp-relay")
    document(parser, help_texts.DOCS | ops.DOCS, help_texts.COMMON)
    finish(parser)
    return parser


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text!r} should be HOST:PORT, e.g. 127.0.0.1:8443")
    return host.strip("[]") or "0.0.0.0", int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    run_main(_main, _parser(), argv)


def _main(args: argparse.Namespace) -> int:
    if (done := ops.run(args)) is not None:
        return done
    if args.command == "init":
        return _init(args)
    if args.command == "admin-token":
        return _admin_token(args)
    logs.configure(args.log_format, "debug" if args.debug else args.log_level)
    # Until the relay can reload, a SIGHUP (systemctl reload) must not end it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    host, port = parse_listen(args.listen)
    require_initialised(args.data)
    # Before anything reads or writes the directory: a second relay on it would
    # close the first one's live sessions as 'recovered'.
    lock = lock_data_dir(args.data, LOCK_FILE, "qp-relay serve")
    tls = _server_tls(args)
    if tls is None and not _is_loopback(host):
        if not args.insecure_plain_ws:
            raise UsageError(
                f"refusing plain ws:// on {host}: give --tls-cert/--tls-key, or "
                "--insecure-plain-ws when a TLS proxy sits in front"
            )
        log.warning("serving plain ws:// on %s: only safe behind a TLS-terminating proxy", host)
    try:
        return asyncio.run(_serve(args.data, Listen(host, port, tls)))
    finally:
        lock.release()


def _init(args: argparse.Namespace) -> int:
    given = None
    if args.tls_cert or args.tls_key or args.tls_ca:
        given = given_files(args.tls_cert, args.tls_key, args.tls_ca)
    result = init_relay(args.data, args.public_url, args.tls_names, given)
    if args.json:
        print(
            json.dumps(
                {
                    "admin_token": result.admin_token,
                    "relay_id": result.relay_id,
                    "ca_pin": result.ca_pin or None,
                }
            )
        )
        return 0
    print(f"relay {result.relay_id} initialised in {result.data_dir}")
    print(f"admin token (shown once): {result.admin_token}")
    if result.ca_pin:
        print(f"private CA pin (clients trust the relay with it): --ca-pin {result.ca_pin}")
    for line in next_steps(result, args.public_url, bool(args.tls_names or given)):
        print(line)
    return 0


def next_steps(result: InitResult, public_url: str, tls: bool) -> list[str]:
    """What to run after ``init``, complete enough to copy: serve with the right
    listen address (TLS here, or a proxy in front), log in, add the first customer."""
    data, url = result.data_dir, public_url.rstrip("/")
    parsed = urlsplit(url) if url else None
    default_port = 443 if parsed is not None and parsed.scheme == "wss" else 8443
    port = (parsed.port if parsed is not None else None) or default_port
    lines = ["next steps:"]
    if tls:
        lines.append(f"  qp-relay serve --data {data} --listen 0.0.0.0:{port}")
    elif url.startswith("wss://"):
        lines += [
            "  # behind a TLS-terminating proxy (deploy/nginx, deploy/caddy); list the proxy",
            "  # in relay.toml's limits.trusted_proxies, or give --tls-cert/--tls-key",
            f"  qp-relay serve --data {data} --listen 127.0.0.1:8443",
        ]
    else:
        lines.append(f"  qp-relay serve --data {data} --listen 127.0.0.1:{port}  # loopback only")
    login = url or f"ws://127.0.0.1:{port}"
    pin = f" --ca-pin {result.ca_pin}" if result.ca_pin else ""
    lines += [
        f"  qp login {login} --token {result.admin_token}{pin}",
        '  qp customer add "First Customer"',
        '  qp enroll-token create --customer "First Customer"   # prints the line for the client',
    ]
    return lines


def _server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """``--tls-cert``/``--tls-key``, else what ``relay.toml`` names, else plain."""
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        return server_context(args.tls_cert, args.tls_key)
    files = configured(args.data, load_settings(args.data / SETTINGS_FILE))
    return server_context(*files) if files else None


def _admin_token(args: argparse.Namespace) -> int:
    new = rotate_admin_token(args.data, args.name)
    if args.json:
        print(json.dumps({"name": new.name, "token": new.token, "expires_at": iso(new.expires_at)}))
        return 0
    if new.was_disabled:
        print(f"{new.name} was disabled; enabled again")
    print(f"new token for {new.name} (shown once; the old one no longer works): {new.token}")
    print(f"it expires on {new.expires_at:%Y-%m-%d}; next: qp login URL --token {new.token}")
    return 0


async def _serve(data_dir: Path, listen: Listen) -> int:
    relay = await Relay.open(data_dir)
    try:
        url = await relay.start(listen)
    except OSError as exc:  # e.g. the port is taken: say so and exit, so systemd retries
        await relay.stop()  # the store's thread would keep the process alive
        where = f"{listen.host}:{listen.port}"
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ConfigError(f"cannot listen on {where}: {why}") from None
    except ConfigError:  # e.g. proxy_protocol on a TLS listener
        await relay.stop()
        raise
    ops.write_pid(data_dir)  # for qp-relay reload
    print(f"listening on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, relay.reload)  # live sessions continue
    await stop.wait()
    log.info("stopping: ending active sessions as relay_shutdown")
    loop.remove_signal_handler(signal.SIGHUP)
    await relay.stop()
    ops.remove_pid(data_dir)
    print("relay stopped", flush=True)
    sys.stdout.flush()
    return 0
