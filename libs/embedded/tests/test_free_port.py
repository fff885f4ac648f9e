"""free_port: ports handed out ahead of the servers that bind them."""

from __future__ import annotations

import socket

import pytest

from authpi.embedded import servers
from authpi.embedded.servers import free_port

# Where the kernel's ephemeral range leaves no room below it, free_port falls back to the
# kernel's choice: neither test applies.
pytestmark = pytest.mark.skipif(
    servers._ephemeral_low() - servers._PORTS_FROM < servers._TRIES,
    reason="no room below this kernel's ephemeral range",
)


def test_ports_come_from_below_the_ephemeral_range():
    """No outgoing connection can take a handed-out port before its server binds it: the kernel
    gives connections their local ports from the ephemeral range only."""
    low = servers._ephemeral_low()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(servers._PORTS_FROM <= p < low for p in ports), (low, ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_a_port_something_holds_is_passed_over(monkeypatch: pytest.MonkeyPatch):
    """A listener and the local end of a connection both hold their port: neither is handed out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as conn:
            held = [listener.getsockname()[1], conn.getsockname()[1]]
            spare = free_port() + 1
            while not servers._bindable(spare):
                spare += 1
            draws = iter([*held, spare])
            monkeypatch.setattr(servers.random, "randrange", lambda *_: next(draws))
            assert free_port() == spare
