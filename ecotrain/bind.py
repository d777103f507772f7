"""Checks on the address `ecotrain dashboard` is asked to serve on, before Streamlit starts:
a bad port or host is one line and exit code 2, not a traceback from inside the server."""

from __future__ import annotations

import ipaddress
import re
import socket

from ecotrain.errors import UserError

# Only digits and dots: meant as an IPv4 address, so it must be one (999.1.1.1 is not, and
# must not be sent to a resolver as a host name).
_DOTTED = re.compile(r"^[0-9.]+$")


def check_bind(host: str, port: int) -> None:
    """Raise a one-line UserError unless ``host``:``port`` is an address one could bind."""
    if not 1 <= port <= 65535:
        raise UserError(f"bad --port {port}: use 1-65535")
    text = host.strip()
    if not text:
        raise UserError("empty --host: use 127.0.0.1 (this machine) or 0.0.0.0 (every interface)")
    try:
        ipaddress.ip_address(text.strip("[]"))
        return
    except ValueError:
        if _DOTTED.match(text) or ":" in text:
            raise UserError(f"bad --host {host!r}: not an IP address") from None
    try:
        socket.getaddrinfo(text, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UserError(f"bad --host {host!r}: cannot resolve it ({e})") from None
