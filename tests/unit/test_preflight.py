"""preflight_ports checks each port on the address its component binds: a listener elsewhere on
the same port is no conflict, one on that address or on every address is."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from chaos.cluster import layout as L
from chaos.cluster.processes import port_free


@pytest.fixture
def every_address_port() -> Iterator[int]:
    """A port something listens on at 0.0.0.0."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_listener_on_the_same_address_blocks(taken_port: int) -> None:
    assert not port_free(L.LOOPBACK, taken_port)


def test_a_listener_on_another_address_does_not_block(taken_port: int) -> None:
    """Loopback taken, the bridge address (bound even before the bridge exists) is free."""
    assert port_free(L.NODE_IP, taken_port)


def test_a_listener_on_every_address_blocks(every_address_port: int) -> None:
    assert not port_free(L.NODE_IP, every_address_port)
    assert not port_free(L.LOOPBACK, every_address_port)
