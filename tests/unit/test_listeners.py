"""tests/support.listeners finds this process's own listening sockets with the right address,
port and protocol, and leaves out connected ones."""

from __future__ import annotations

import ipaddress
import os
import socket

from support import Listener, listeners


def test_finds_tcp_and_udp_on_ipv4_and_ipv6() -> None:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM),
               socket.socket(socket.AF_INET6, socket.SOCK_STREAM),
               socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
               socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)]
    try:
        for sock, address in zip(sockets, ("127.0.0.1", "::1", "127.0.0.2", "::"), strict=True):
            sock.bind((address, 0))
        sockets[0].listen()
        sockets[1].listen()
        expected = {Listener(protocol, ipaddress.ip_address(address), sock.getsockname()[1])
                    for sock, protocol, address in zip(
                        sockets, ("tcp", "tcp6", "udp", "udp6"),
                        ("127.0.0.1", "::1", "127.0.0.2", "::"), strict=True)}
        assert expected <= set(listeners(os.getpid()))
    finally:
        for sock in sockets:
            sock.close()


def test_leaves_out_connected_and_unlistened_sockets() -> None:
    with socket.socket() as server, socket.socket() as bound_only:
        server.bind(("127.0.0.1", 0))
        server.listen()
        bound_only.bind(("127.0.0.1", 0))
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            ports = {one.port for one in listeners(os.getpid())}
            assert server.getsockname()[1] in ports
            assert client.getsockname()[1] not in ports
            assert bound_only.getsockname()[1] not in ports
