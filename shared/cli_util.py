"""What every command-line front end shares: logging, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from shared.cli_shape import completion
from shared.errors import QPError
from shared.safe_text import clean


class CleanFormatter(logging.Formatter):
    """Log lines without escape sequences: a message may quote a peer's text (a
    relay's close reason, an agent's name) and the log goes to a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record), multiline=True)


def _log_to_stderr(level: int, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CleanFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])


def setup_logging(debug: bool) -> None:
    """Log lines to stderr, cleaned; DEBUG with ``--debug``."""
    _log_to_stderr(
        logging.DEBUG if debug else logging.INFO, "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not debug:
        for noisy in ("asyncssh", "websockets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def run_main(
    body: Callable[[argparse.Namespace], int],
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    quiet_logs: bool = False,
    failure_code: Callable[[argparse.Namespace], int] = lambda _args: 1,
) -> None:
    """Parse, run ``body`` and exit: 0 on success; one line on stderr and
    ``failure_code(args)`` (1 unless a command says otherwise, as ``qp exec`` says
    255 like ssh) for any product error; 130 on Ctrl+C. ``--debug`` shows
    tracebacks. ``completion SHELL`` prints the parser's completion script."""
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "completion":
        print(completion(parser, args.shell), end="")
        sys.exit(0)
    debug = bool(getattr(args, "debug", False))
    if quiet_logs and not debug:
        _log_to_stderr(logging.WARNING, "%(message)s")
        logging.getLogger("asyncssh").setLevel(logging.CRITICAL)
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
    else:
        setup_logging(debug)
    prog = parser.prog
    try:
        code = body(args)
    except QPError as exc:
        if debug:
            raise
        # The message may quote the relay or an agent (a decline reason): clean it.
        print(f"{prog}: {clean(exc)}", file=sys.stderr)
        code = failure_code(args)
    except KeyboardInterrupt:
        code = 130
    except OSError as exc:
        if debug:
            raise
        line = f"{prog}: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
        print(clean(line), file=sys.stderr)
        code = failure_code(args)
    sys.exit(code)
