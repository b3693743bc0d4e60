"""Network facts shared by the client and the emulator; standard library only."""

from __future__ import annotations

import functools
import ipaddress

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


# Asked on every request (the proxy decision, the base_url check) with the same few hosts;
# parsing an address, or failing to for a name, costs 10-15 µs each time.
@functools.lru_cache(maxsize=256)
def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (localhost, 127.0.0.0/8, ::1).

    Args:
        host: A host name or IP address, without brackets.

    Returns:
        True for loopback names and addresses.
    """
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
