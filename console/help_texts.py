"""What ``qp COMMAND --help`` says: a description and examples per command, and the
help of options whose meaning is plain from the command (the one-line summaries and
most option helps sit beside the parser code). ``tests/unit/test_cli_help.py``
walks the parsers: every command documented, every option explained."""

from __future__ import annotations

from shared.cli_shape import Doc

#: Options many commands share, explained once.
COMMON = {
    "--json": "print JSON (for scripts) instead of a table",
    "agent": "the agent: its name or id (see qp agents)",
    "customer": "the customer's name",
    "--customer": "the customer's name",
    "request": "the help request's label (e.g. REQ-12) or a ticket reference",
    "session": "the session id (ses-…; see qp sessions)",
    "id": "the entry's id",
    "--consent": "attended: the user at the machine must allow each session; "
    "unattended: technicians connect without asking",
    "--forwarding": "port forwarding: off, lan (the agent's local network) or list (--allow)",
    "--record-input": "record what the technician types, besides the output",
    "--complexity": "standard, complex or specialist: picks the rate",
    "--notes": "what was done, as shown on the invoice",
    "--legal-name": "the registered name, as on invoices",
    "--city": "city of the address",
    "--postcode": "postcode of the address, e.g. 1015 AA",
    "--email": "where invoices go",
    "--iban": "bank account customers pay to, e.g. NL91ABNA0417164300",
}

POLICY = (
    "Without flags, show the policy in force; with flags, change it. The agent's "
    "own policy overrides the customer's; flags not given keep their value."
)

DOCS: dict[str, Doc] = {
    "qp login": Doc(
        "Check the relay URL and your token against the relay and store both in your "
        "profile ($QP_HOME, default ~/.config/qp or $XDG_CONFIG_HOME/qp), for you alone.",
        (
            "qp login wss://relay.example.nl --token qpt_…",
            "qp login wss://relay.example.nl:8443 --token qpt_… --ca-pin sha256:…",
            "qp login wss://relay.example.nl --token qpt_… --ca-file company-ca.pem",
        ),
        {"url": "the relay's URL, wss://HOST[:PORT]", "--token": "your technician token"},
    ),
    "qp whoami": Doc(
        "Show who the relay thinks you are: name, role, level and customers.",
        ("qp whoami", "qp whoami --json"),
    ),
    "qp customer": Doc("Customers: add, list, session policy and billing data."),
    "qp customer add": Doc(
        "Add a customer (admin).",
        ('qp customer add "Bakkerij Jansen"',),
        {"name": "the customer's name as technicians will type it"},
    ),
    "qp customer list": Doc("List the customers you may see.", ("qp customer list --json",)),
    "qp customer policy": Doc(
        "Show or change a customer's session policy. " + POLICY,
        (
            "qp customer policy Acme",
            "qp customer policy Acme --consent attended --record-input yes",
            "qp customer policy Acme --forwarding list --allow 10.0.0.5:443",
        ),
    ),
    "qp customer billing": Doc(
        "Show or set what invoices say about a customer: legal name, address, "
        "Chamber of Commerce and VAT numbers, payment terms, e-invoicing endpoint.",
        (
            "qp customer billing Acme",
            'qp customer billing Acme --legal-name "Acme B.V." --address "Damrak 1" '
            "--postcode '1012 LG' --city Amsterdam --kvk 12345678",
        ),
    ),
    "qp technician": Doc(
        "Technicians and office staff: add, list, disable and enable, new tokens, "
        "level, customers, and what billing logins may read (admin)."
    ),
    "qp technician add": Doc(
        "Add a technician, billing clerk or admin and print their token once (admin).",
        (
            "qp technician add alice --level 2 --customer Acme --customer Globex",
            "qp technician add bea --role billing",
        ),
        {
            "name": "their login name",
            "--level": "expertise level 1-3, which picks rates",
            "--role": "technician: sessions; billing: time and invoices; admin: everything",
        },
    ),
    "qp technician list": Doc(
        "List technicians: role, level, customers, disabled, token expiry and grants.",
        ("qp technician list",),
    ),
    "qp technician disable": Doc(
        "Refuse their logins at once (as for an unknown token), end their running "
        "sessions (end reason technician_disabled) and close their console links.",
        ("qp technician disable alice",),
    ),
    "qp technician enable": Doc(
        "Let a disabled technician log in again with the token they had.",
        ("qp technician enable alice",),
    ),
    "qp technician rotate-token": Doc(
        "Make a new token and print it once; the old one stops working at once. The new "
        "one expires after limits.technician_token_days. Without NAME, your own: your "
        "profile is updated, so this console stays logged in.",
        ("qp technician rotate-token alice", "qp technician rotate-token"),
    ),
    "qp technician set-level": Doc(
        "Change a technician's expertise level (which picks rates).",
        ("qp technician set-level alice 3",),
        {"level": "expertise level 1-3"},
    ),
    "qp technician set-customers": Doc(
        "Replace the customers a technician may serve (none: no customer at all).",
        ("qp technician set-customers alice Acme Globex",),
        {"customers": "customer names, each as one argument"},
    ),
    "qp technician grant": Doc(
        "Let a billing login read terminal recordings, diagnostics content or "
        "help-request text; without a grant those answer as if they did not exist.",
        ("qp technician grant bea recordings", "qp technician grant bea help"),
        {"grant": "recordings, diagnostics or help"},
    ),
    "qp technician revoke-grant": Doc(
        "Take a grant back from a billing login.",
        ("qp technician revoke-grant bea recordings",),
        {"grant": "recordings, diagnostics or help"},
    ),
    "qp logout": Doc(
        "Remove your profile and the token in it from this machine ($QP_HOME). The "
        "token itself stays valid until an admin rotates it or disables you.",
        ("qp logout",),
    ),
    "qp enroll-token": Doc("Tokens that enroll an agent for a customer: create, revoke, list."),
    "qp enroll-token create": Doc(
        "Make an enrollment token and print the line the client runs to install the agent.",
        (
            "qp enroll-token create --customer Acme",
            "qp enroll-token create --customer Acme --uses 10 --ttl 7d",
        ),
        {"--uses": "how many machines may enroll with it"},
    ),
    "qp enroll-token revoke": Doc(
        "Revoke an enrollment token: no further machine can use it.",
        ("qp enroll-token revoke enr-3f2a1b0c9d8e",),
        {"id": "the token's id (see qp enroll-token list)"},
    ),
    "qp enroll-token list": Doc(
        "List enrollment tokens with their uses left and expiry.", ("qp enroll-token list",)
    ),
    "qp agents": Doc(
        "List the agents you may reach, with their customer and whether they are online.",
        ("qp agents", "qp agents --json"),
    ),
    "qp agent": Doc("One agent: revoke it, or show and change its policy."),
    "qp agent revoke": Doc(
        "Revoke an agent: it can no longer link, and its sessions end.",
        ("qp agent revoke old-laptop",),
    ),
    "qp agent policy": Doc(
        "Show or override one agent's session policy. " + POLICY,
        ("qp agent policy kassa", "qp agent policy kassa --consent attended"),
    ),
    "qp exec": Doc(
        "Run a command on an agent over SSH through the relay and exit with its status. "
        "qp's own failures exit 255, as ssh does.",
        (
            "qp exec kassa -- uname -a",
            "qp exec kassa --request REQ-12 -- systemctl restart cups",
            "tar c logs | qp exec kassa -- tar x -C /tmp",
        ),
    ),
    "qp shell": Doc(
        "Open an interactive shell on an agent. The session is timed for billing; "
        "link it to a help request with --request.",
        ("qp shell kassa", "qp shell kassa --request REQ-12"),
    ),
    "qp put": Doc(
        "Copy files to an agent over SFTP, within its SFTP root.",
        ("qp put kassa fix.sh /tmp/", "qp put -r kassa configs/ /etc/app/"),
    ),
    "qp get": Doc(
        "Copy files from an agent over SFTP.",
        ("qp get kassa /var/log/syslog .", "qp get -r kassa /etc/cups ./cups"),
    ),
    "qp forward": Doc(
        "Forward local ports through an agent to hosts in its network, as ssh -L does, "
        "within the forwarding policy.",
        (
            "qp forward kassa -L 8080:192.168.1.1:80",
            "qp forward kassa -L 127.0.0.1:9100:printer:9100",
        ),
        {"-L": "[BIND:]LPORT:HOST:PORT: listen on LPORT here, connect to HOST:PORT there"},
    ),
    "qp proxy": Doc(
        "Act as OpenSSH's ProxyCommand for an agent (qp ssh-config writes it for you).",
        ("ssh -o ProxyCommand='qp proxy %h' agt-1a2b3c4d5e6f",),
    ),
    "qp ssh-config": Doc(
        "Print (or --write) an OpenSSH configuration so ssh, scp, sftp and rsync reach "
        "every agent by id (agt-…), now and enrolled later, with host keys checked.",
        ("qp ssh-config --write && ssh agt-1a2b3c4d5e6f", "qp ssh-config > ~/.ssh/qp.conf"),
    ),
    "qp support-code": Doc(
        "Make a one-time support code and print the line for a client without an "
        "installed agent to run.",
        ("qp support-code --customer Acme", "qp support-code --customer Acme --request REQ-12"),
        {"--customer": "the customer the client belongs to"},
    ),
    "qp session": Doc("One session: end it, or replay its recording."),
    "qp session end": Doc("End a running session now.", ("qp session end ses-3f2a1b0c9d8e",)),
    "qp session replay": Doc(
        "Play a recorded terminal session, from the relay or an asciicast file.",
        ("qp session replay ses-3f2a1b0c9d8e", "qp session replay out.cast --speed 4"),
        {"--speed": "playback speed factor, e.g. 2 for twice as fast"},
    ),
    "qp sessions": Doc(
        "List recent sessions: who, where, state, how long and why they ended.",
        ("qp sessions", "qp sessions --json"),
    ),
    "qp diag": Doc(
        "Show an agent's diagnostics, findings first: its latest snapshot (a fresh one "
        "when none is stored and it is online), a fresh one, the list, or a comparison.",
        (
            "qp diag kassa",
            "qp diag kassa --refresh",
            "qp diag kassa --diff",
            "qp diag kassa --list",
        ),
    ),
    "qp queue": Doc(
        "List open help requests, urgent and oldest first, with each one's top finding.",
        ("qp queue",),
    ),
    "qp take": Doc("Assign a help request to yourself.", ("qp take REQ-12",)),
    "qp request": Doc("One help request: show or close it."),
    "qp request show": Doc(
        "Show a help request with its findings, snapshots and sessions.",
        ("qp request show REQ-12",),
    ),
    "qp request close": Doc(
        "Mark a help request resolved; the client sees the resolution.",
        ('qp request close REQ-12 --resolution "spooler restarted"',),
        {"--resolution": "what fixed it, shown to the client"},
    ),
    "qp rates": Doc("Rate cards: import, export, show, or start from the template."),
    "qp rates import": Doc(
        "Import a rate card (TOML). Errors name the offending line.",
        ("qp rates template > rates.toml && qp rates import rates.toml",),
        {"file": "the rate card file"},
    ),
    "qp rates export": Doc(
        "Print the rate card in force (or another by digest) as TOML.",
        ("qp rates export -o rates.toml",),
    ),
    "qp rates show": Doc("Show imported rate cards and the rates in force.", ("qp rates show",)),
    "qp rates template": Doc(
        "Print a sample rate card to edit and import; needs no relay.",
        ("qp rates template -o rates.toml",),
    ),
    "qp time": Doc(
        "List time entries (with filters), or show, edit, add or approve them.",
        (
            "qp time --status draft",
            "qp time --customer Acme --from 2026-11-01 --to 2026-11-30",
            "qp time show ent-3f2a1b0c9d8e",
        ),
    ),
    "qp time show": Doc(
        "Show one time entry with every figure explained.", ("qp time show ent-3f2a1b0c9d8e",)
    ),
    "qp time edit": Doc(
        "Change an entry; it is recomputed and the history keeps the old values and reason.",
        ('qp time edit ent-3f2a1b0c9d8e --complexity complex --reason "database recovery"',),
        {
            "--service": "the kind of work, which picks the rate",
            "--urgent": "yes: urgent surcharge applies; no: it does not",
        },
    ),
    "qp time add": Doc(
        "Record work done outside a session: a phone call, on site, a project.",
        (
            'qp time add --customer Acme --service phone --minutes 20 --notes "printer advice"',
            "qp time add --customer Acme --service on_site --start '2026-11-03 14:00' "
            "--end '2026-11-03 15:30'",
        ),
        {"--urgent": "urgent work (the surcharge applies)"},
    ),
    "qp time approve": Doc(
        "Approve draft entries so they can be invoiced.",
        ("qp time approve ent-3f2a1b0c9d8e ent-9d8e7f6a5b4c",),
        {"ids": "entry ids"},
    ),
    "qp prepaid": Doc("Prepaid hours: add blocks, list balances, set terms."),
    "qp prepaid add": Doc(
        "Add a block of prepaid hours for a customer.",
        ('qp prepaid add Acme --hours 10 --expires 2027-12-31 --note "strippenkaart"',),
        {"--note": "shown with the block"},
    ),
    "qp prepaid list": Doc(
        "List a customer's prepaid blocks and balances.", ("qp prepaid list Acme",)
    ),
    "qp prepaid terms": Doc(
        "Show or set what a customer's prepaid hours pay and when to warn.",
        ("qp prepaid terms Acme --pays all --warn-below 2",),
    ),
    "qp invoice": Doc("Invoices: create, list, credit, export."),
    "qp invoice create": Doc(
        "Invoice a customer's approved work of one month.",
        ("qp invoice create --customer Acme --period 2026-11 --dry-run",),
        {"--period": "the month, YYYY-MM"},
    ),
    "qp invoice list": Doc(
        "List invoices and credit notes.",
        ("qp invoice list --customer Acme",),
        {"--customer": "only this customer's"},
    ),
    "qp invoice credit": Doc(
        "Cancel an invoice with a credit note.",
        ('qp invoice credit 2026-000042 --reason "wrong customer"',),
        {"--reason": "why, printed on the credit note"},
    ),
    "qp invoice export": Doc(
        "Export an invoice as CSV, JSON, UBL (e-invoice), HTML or PDF.",
        (
            "qp invoice export 2026-000042 --format pdf -o 2026-000042.pdf",
            "qp invoice export 2026-000042 --format ubl --profile peppol -o 2026-000042.xml",
        ),
        {
            "--format": "csv, json, ubl, html or pdf",
            "--profile": "UBL flavour: nlcius (Dutch) or peppol (BIS Billing 3.0)",
        },
    ),
    "qp company": Doc("The IT company's own data on its invoices."),
    "qp company show": Doc("Show the company data in force.", ("qp company show",)),
    "qp company set": Doc(
        "Change the company data on invoices (billing or admin).",
        ("qp company set --iban NL91ABNA0417164300 --vat NL123456782B01",),
    ),
}
