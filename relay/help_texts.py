"""What ``qp-relay COMMAND --help`` says. ``tests/unit/test_cli_help.py`` walks it."""

from __future__ import annotations

from shared.cli_shape import Doc

COMMON = {
    "--data": "the relay's data directory (keys, database, relay.toml)",
    "--json": "print JSON (for scripts)",
}

DOCS: dict[str, Doc] = {
    "qp-relay init": Doc(
        "Create a relay data directory: SSH certificate authorities, the database, "
        "relay.toml with every setting at its default, and the first admin token "
        "(printed once). With --tls-names, also a private CA and a server certificate "
        "that serve uses; clients trust it by the --ca-pin printed here and in every "
        "enroll and support line.",
        (
            "qp-relay init --data /var/lib/qp-relay --public-url wss://relay.example.nl",
            "qp-relay init --data /var/lib/qp-relay --public-url wss://relay.example.nl:8443 "
            "--tls-names relay.example.nl",
        ),
    ),
    "qp-relay admin-token": Doc(
        "On the relay machine, when an admin's token is lost or leaked: a new token for "
        "that admin, printed once; the old one stops working at once, even while the "
        "relay serves. A disabled admin is enabled again.",
        (
            "qp-relay admin-token --rotate --data /var/lib/qp-relay",
            "qp-relay admin-token --rotate --data /var/lib/qp-relay --name admin",
        ),
    ),
    "qp-relay serve": Doc(
        "Run the relay: agents and technicians connect, sessions are paired and timed. "
        "SIGTERM ends running sessions cleanly and writes their time. One relay per "
        "data directory: a second one exits at once naming the first one's pid.",
        (
            "qp-relay serve --data /var/lib/qp-relay --listen 0.0.0.0:443 "
            "--tls-cert cert.pem --tls-key key.pem",
            "qp-relay serve --data /var/lib/qp-relay --listen 127.0.0.1:8443   # behind a proxy",
        ),
        {
            "--tls-cert": "certificate chain (PEM) to serve wss:// with",
            "--tls-key": "its private key (PEM)",
        },
    ),
}
