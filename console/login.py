"""``qp login``: check the URL and token against the relay, then keep them.

With ``--ca-pin`` (or ``--ca-file``) the relay's CA certificate is kept in the
profile directory too, so every later command trusts it from any directory.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from console.profile import Profile, home
from console.rpc import RelayClient
from shared.secrets_io import make_private_dir
from shared.tls_trust import CA_FILE_NAME, relay_ca, store_ca


async def login(url: str, token: str, ca_file: str | None, ca_pin: str | None) -> Any:
    """Log in and save the profile; the relay's ``whoami`` answer."""
    url = url.rstrip("/")
    pem = await relay_ca(url, ca_file, ca_pin)
    staged: str | None = None
    if pem is not None:
        # Staged beside the profile: a failed login leaves the working one alone.
        make_private_dir(home())
        staged = store_ca(home(), pem, f".{CA_FILE_NAME}.new")
    try:
        async with RelayClient(Profile(url, token, staged)) as relay:
            who = await relay.call("whoami")
    except BaseException:
        if staged is not None:
            with contextlib.suppress(OSError):
                os.unlink(staged)
        raise
    kept = None
    if staged is not None:
        kept = str((home() / CA_FILE_NAME).absolute())
        os.replace(staged, kept)
    Profile(url, token, kept).save()
    return who
