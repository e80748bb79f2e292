"""deploy/nginx/qp-relay.conf, run by a real nginx in front of ``qp-relay serve``.

nginx terminates TLS (a certificate from a private CA made here) and proxies to the
relay on loopback. Its upstream connections come from 127.0.0.2 (``proxy_bind``, the
only line this test adds), and only that address is in ``trusted_proxies``, so the
relay's log naming the client 127.0.0.1 proves it read X-Forwarded-For. Login,
exec, shell and a 64 MiB transfer all go through nginx: the public URL is nginx's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import Proc, World, timeout
from relay.tls import create_private_ca
from tests.integration.pty_shell import PtyShell
from tests.integration.toolkit_helpers import sha256

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "qp-relay.conf"
PROXY_SOURCE = "127.0.0.2"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


def free_port() -> int:
    """A port free now on 127.0.0.1 (nginx cannot be told to pick one itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rendered(port: int, upstream: int, cert: Path, key: Path) -> str:
    """The shipped config with this test's address, ports and certificate."""
    text = SHIPPED.read_text()
    swaps = [
        (r"listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        (r"\n\s*listen \[::\]:443 ssl;", ""),
        (r"server 127\.0\.0\.1:8443;", f"server 127.0.0.1:{upstream};"),
        (r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};"),
        (r"(location /v1/ \{\n)", rf"\1        proxy_bind {PROXY_SOURCE};\n"),
    ]
    for pattern, replacement in swaps:
        text, n = re.subn(pattern, replacement, text, count=1)
        assert n == 1, f"the shipped config no longer has {pattern!r}"
    return text


def wait_listening(port: int, proc: Proc, within: float = 20) -> None:
    """Until nginx accepts connections (it prints nothing when it is up)."""
    deadline = time.monotonic() + timeout(within)
    while True:
        assert proc.popen.poll() is None, proc.lines
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "nginx did not start listening"
            time.sleep(0.05)  # polling a port: nginx has no readiness signal to wait on


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[World, Proc, Path]]:
    world = World(tmp_path / "world")
    nginx: Proc | None = None
    try:
        tls = tmp_path / "tls"
        tls.mkdir()
        files = create_private_ca(tls, "127.0.0.1,localhost", "rly-nginx-test")
        port = free_port()
        token = world.init_relay(
            trusted_proxies=f'["{PROXY_SOURCE}"]',
            public_url=f'"wss://127.0.0.1:{port}"',
        )
        world.start_relay(0)

        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        site = prefix / "qp-relay.conf"
        site.write_text(rendered(port, world.port, tls / files.cert, tls / files.key))
        conf = prefix / "nginx.conf"
        conf.write_text(
            f"user {'root' if os.geteuid() == 0 else os.environ.get('USER', 'nobody')};\n"
            "worker_processes 1;\n"
            f"pid {prefix}/nginx.pid;\n"
            "error_log stderr warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {prefix}/logs/access.log;\n"
            f"    client_body_temp_path {prefix}/body;\n"
            f"    proxy_temp_path {prefix}/proxy;\n"
            f"    include {site};\n"
            "}\n"
        )
        assert NGINX is not None
        nginx = Proc([NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"], world.env())
        wait_listening(port, nginx)
        world.url = f"wss://127.0.0.1:{port}"
        world.qp("login", world.url, "--token", token, "--ca-file", str(tls / files.ca))
        assert world.relay is not None
        yield world, world.relay, tls / files.ca
    finally:
        if nginx is not None:
            nginx.stop()
        world.close()


def test_login_exec_shell_and_64_mib_through_nginx(
    proxied: tuple[World, Proc, Path], tmp_path: Path
) -> None:
    world, relay, ca = proxied
    world.qp("customer", "add", "Acme")
    _, data = world.enroll("Acme", "kassa", "--ca-file", str(ca))
    world.start_agent(data)

    done = world.qp("exec", "kassa", "--", "echo", "through-nginx")
    assert done.stdout == b"through-nginx\n"

    shell = PtyShell("kassa", world.env())
    shell.type(b"echo shell-$((6*7)); exit\n")
    shell.read_until(b"shell-42")
    assert shell.wait() == 0

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(64 * 1024 * 1024))
    target = tmp_path / "received.bin"
    world.qp("put", "kassa", "-q", str(big), str(target))
    assert sha256(target) == sha256(big)

    # The relay saw nginx (127.0.0.2) and believed its X-Forwarded-For.
    line = relay.wait_line(r"console of admin \(admin\) linked from ")
    assert line.endswith("linked from 127.0.0.1"), line
    assert PROXY_SOURCE not in line
