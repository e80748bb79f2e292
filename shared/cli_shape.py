"""The shape every command line shares, like gh and kubectl: ``--version``, global
flags accepted before or after the subcommand, shell completion generated from the
parser itself, and a walk over every subcommand (for the help test)."""

from __future__ import annotations

import argparse
import shlex
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata

DIST = "quarkpulse-remote"
SHELLS = ("bash", "zsh", "fish")


def version() -> str:
    """The installed product's version (``0.0.0+unknown`` when run from a bare tree)."""
    try:
        return metadata.version(DIST)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands of ``parser`` by name (empty for a leaf)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(
    parser: argparse.ArgumentParser, path: str | None = None
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``("qp time add", parser)`` for ``parser`` and every subcommand below it."""
    here = path or parser.prog
    yield here, parser
    for name, child in children(parser).items():
        yield from walk(child, f"{here} {name}")


def summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, as given to ``add_parser(help=…)``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


@dataclass(frozen=True)
class Doc:
    """What ``PROG SUBCOMMAND --help`` says beyond the one-line summary: a
    description, examples, and the help of options that have none inline."""

    description: str
    examples: tuple[str, ...] = ()
    options: Mapping[str, str] = field(default_factory=dict)


def document(
    parser: argparse.ArgumentParser, docs: Mapping[str, Doc], common: Mapping[str, str]
) -> None:
    """Give each subcommand its :class:`Doc` and each option without inline help
    the command's own text or, for options many commands share (``--json``,
    ``--data``), the common one. ``docs`` is keyed by path, e.g. ``"qp time add"``."""
    for path, node in walk(parser):
        doc = docs.get(path)
        if doc is not None:
            node.description = textwrap.fill(doc.description, 78)
            if doc.examples:
                node.epilog = "examples:\n" + "\n".join(f"  {e}" for e in doc.examples)
            node.formatter_class = argparse.RawDescriptionHelpFormatter
        for action in node._actions:
            if action.help or isinstance(action, argparse._SubParsersAction):
                continue
            key = action.option_strings[-1] if action.option_strings else action.dest
            action.help = (doc.options.get(key) if doc else None) or common.get(key)


def finish(parser: argparse.ArgumentParser, global_flags: tuple[str, ...] = ("--debug",)) -> None:
    """Add ``--version`` and accept ``global_flags`` after any subcommand too.

    A repeated flag on a subparser has the default SUPPRESS, so it sets the value
    only when given there and never resets what was given before the subcommand.
    """
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    flags = [a for a in parser._actions if set(a.option_strings) & set(global_flags)]
    for _, child in list(walk(parser))[1:]:
        taken = {s for a in child._actions for s in a.option_strings}
        for flag in flags:
            if taken & set(flag.option_strings):
                continue
            child.add_argument(
                *flag.option_strings,
                action="store_true",
                default=argparse.SUPPRESS,
                help=flag.help,
            )


def add_completion(sub: argparse._SubParsersAction[argparse.ArgumentParser], prog: str) -> None:
    """A ``completion SHELL`` subcommand printing the script for ``prog``."""
    comp = sub.add_parser(
        "completion",
        help="print a shell completion script",
        description=(
            f"Print the completion script for {prog}. Load it in the current shell, or "
            "install it for good."
        ),
        epilog=(
            f"examples:\n  source <({prog} completion bash)\n"
            f"  {prog} completion bash > /etc/bash_completion.d/{prog}\n"
            f'  {prog} completion zsh > "${{fpath[1]}}/_{prog}"\n'
            f"  {prog} completion fish > ~/.config/fish/completions/{prog}.fish"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("shell", choices=SHELLS, help="the shell to write the script for")


def completion(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell``, generated from the parser tree."""
    if shell == "fish":
        return _fish(parser)
    script = _bash(parser)
    if shell == "zsh":  # zsh runs bash completion functions through bashcompinit
        return "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script


def _words(parser: argparse.ArgumentParser) -> list[str]:
    options = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    return [*children(parser), *options]


def _ident(prog: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in prog)


def _bash(parser: argparse.ArgumentParser) -> str:
    prog, fn = parser.prog, f"_{_ident(parser.prog)}_complete"
    paths = [path for path, _ in walk(parser)]
    steps = "|".join(shlex.quote(p) for p in paths)
    cases = "\n".join(
        f"        {shlex.quote(path)}) words={shlex.quote(' '.join(_words(node)))} ;;"
        for path, node in walk(parser)
    )
    return f"""# {prog} completion for bash; generated by `{prog} completion bash`.
{fn}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" path="{prog}" word words="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$path $word" in
            {steps}) path="$path $word" ;;
        esac
    done
    case "$path" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F {fn} {prog}
"""


def _fish(parser: argparse.ArgumentParser) -> str:
    prog = parser.prog
    lines = [f"# {prog} completion for fish; generated by `{prog} completion fish`."]
    lines.append(f"complete -c {prog} -f")
    for path, node in walk(parser):
        parts = path.split()[1:]
        if not parts:
            condition = "__fish_use_subcommand"
        else:
            condition = "; and ".join(f"__fish_seen_subcommand_from {p}" for p in parts)
            names = " ".join(children(node))
            if names:
                condition += f"; and not __fish_seen_subcommand_from {names}"
        helps = summaries(node)
        for name in children(node):
            lines.append(
                f"complete -c {prog} -n {shlex.quote(condition)} -a {shlex.quote(name)} "
                f"-d {shlex.quote(helps.get(name, ''))}"
            )
        for action in node._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for option in action.option_strings:
                if option.startswith("--"):
                    lines.append(
                        f"complete -c {prog} -n {shlex.quote(condition)} -l {option[2:]} "
                        f"-d {shlex.quote(action.help or '')}"
                    )
    return "\n".join(lines) + "\n"
