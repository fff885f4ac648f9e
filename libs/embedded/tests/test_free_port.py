"""free_port: ports handed out ahead of the servers that bind them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from authpi.embedded import servers
from authpi.embedded.servers import free_port

# The kernel's default ephemeral range starts here; the tests pin it, so that they hold whatever
# this kernel is set to.
DEFAULT_LOW = 32768


def test_the_ephemeral_range_is_read_from_the_kernel():
    text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
    assert servers._ephemeral_low() == int(text.split()[0])


def test_ports_come_from_below_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch):
    """No outgoing connection can take a handed-out port before its server binds it: the kernel
    gives connections their local ports from the ephemeral range only."""
    monkeypatch.setattr(servers, "_ephemeral_low", lambda: DEFAULT_LOW)
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(servers._PORTS_FROM <= p < DEFAULT_LOW for p in ports), ports
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_a_port_something_holds_is_passed_over(monkeypatch: pytest.MonkeyPatch):
    """A listener and the local end of a connection both hold their port: neither is handed out."""
    monkeypatch.setattr(servers, "_ephemeral_low", lambda: DEFAULT_LOW)
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


def test_without_room_below_the_range_the_kernel_chooses(monkeypatch: pytest.MonkeyPatch):
    """A kernel whose ephemeral range starts low leaves no room below it: the port is the kernel's
    choice, still unique and free."""
    monkeypatch.setattr(servers, "_ephemeral_low", lambda: 1024)
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert all(servers._bindable(p) for p in ports)
