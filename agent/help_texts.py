"""What ``qp-agent COMMAND --help`` says: a description and examples per command,
and the help of shared options. ``tests/unit/test_cli_help.py`` walks the parser."""

from __future__ import annotations

from shared.cli_shape import Doc

COMMON = {
    "--data": "the agent's data directory (default: /var/lib/qp-agent as root, "
    "else $XDG_DATA_HOME/qp-agent, by default ~/.local/share/qp-agent)",
    "--json": "print JSON (for scripts)",
    "session": "the session id (ses-…; see qp-agent sessions)",
}

DOCS: dict[str, Doc] = {
    "qp-agent enroll": Doc(
        "Enroll this machine with the IT company's relay, using the line their "
        "technician gave you. Run once; then start the service (qp-agent run).",
        (
            "qp-agent enroll wss://relay.example.nl --token qpe_…",
            "qp-agent enroll wss://relay.example.nl --token qpe_… --name reception-pc",
            "qp-agent enroll wss://relay.example.nl:8443 --token qpe_… --ca-pin sha256:…",
        ),
    ),
    "qp-agent run": Doc(
        "Keep the link to the relay and serve approved technicians' sessions; "
        "reconnects by itself. Normally run by the qp-agent service. One agent per data "
        "directory: a second one exits at once naming the first one's pid.",
        ("qp-agent run", "qp-agent run --data /var/lib/qp-agent"),
    ),
    "qp-agent status": Doc(
        "Show this agent's identity, relay and whether it is linked now.",
        ("qp-agent status",),
    ),
    "qp-agent sessions": Doc(
        "Show who is connected to this machine now, and for which request.",
        ("qp-agent sessions",),
    ),
    "qp-agent policy": Doc(
        "Show or pin this machine's own consent policy. With the pin set, every "
        "technician's session waits for your approval (qp-agent consent), whatever the "
        "IT company's relay says; --consent relay hands the decision back. Only the owner "
        "of the agent's data directory or root may change it.",
        (
            "qp-agent policy",
            "qp-agent policy --consent attended",
            "qp-agent policy --consent relay",
        ),
    ),
    "qp-agent end": Doc(
        "End a technician's session now (all of them without SESSION).",
        ("qp-agent end", "qp-agent end ses-3f2a1b0c9d8e"),
    ),
    "qp-agent consent": Doc(
        "Allow or deny a technician's request to connect, when this machine's policy "
        "asks you first.",
        ("qp-agent consent --allow", "qp-agent consent ses-3f2a1b0c9d8e --deny"),
        {"--allow": "let the technician in", "--deny": "refuse; nothing runs"},
    ),
    "qp-agent log": Doc(
        "Show what technicians did on this machine: sessions, commands, files.",
        ("qp-agent log", "qp-agent log -n 200 --json"),
        {"--lines": "how many of the latest records"},
    ),
    "qp-agent diagnose": Doc(
        "Check this machine now (network, DNS, disks, services) and show the findings; "
        "works without a relay.",
        ("qp-agent diagnose",),
    ),
    "qp-agent help": Doc(
        "Ask the IT company for help; a diagnostics snapshot goes along.",
        (
            'qp-agent help "printer offline"',
            'qp-agent help "no internet" --urgent',
            "qp-agent help --status",
        ),
        {"--urgent": "mark it urgent (urgent work may cost more)"},
    ),
    "qp-agent uninstall": Doc(
        "Remove the agent for good: the relay forgets this machine (the agent must be "
        "running for that), the qp-agent service is disabled and removed, and the data "
        "directory with its keys is deleted. The log of what technicians did here can "
        "be kept.",
        (
            "sudo qp-agent uninstall --data /var/lib/qp-agent --keep-log ~/qp-agent-log.jsonl",
            "qp-agent uninstall --offline --yes",
        ),
    ),
    "qp-agent support": Doc(
        "One-off help with a support code from the technician: nothing is installed, "
        "nothing stays behind, and you are asked before anyone connects.",
        (
            "qp-agent support --relay wss://relay.example.nl --code 123-456-789",
            "qp-agent support --relay wss://relay.example.nl:8443 --code 123-456-789 "
            "--ca-pin sha256:…",
        ),
        {"--code": "the support code the technician gave you"},
    ),
}
