"""The relay on real UDP sockets (loopback, no browser): learning, forwarding, impairing."""

from __future__ import annotations

import random
import socket

import pytest

from pipelines.lab.impairment import CLEAN, Chain, Impairment, Link
from pipelines.lab.relay import RelayThread


@pytest.fixture
def relay():
    up, down = Link(CLEAN, random.Random(1)), Link(CLEAN, random.Random(2))
    back = Link(CLEAN, random.Random(3))
    with RelayThread() as thread:
        pair = thread.pair(Chain(up, down), Chain(back))
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (a, b):
            s.bind(("127.0.0.1", 0))
            s.settimeout(2.0)
        try:
            yield thread, pair, a, b, {"up": up, "down": down, "back": back}
        finally:
            a.close()
            b.close()


def receive_all(sock: socket.socket, quiet_s: float = 0.5) -> list[bytes]:
    got = []
    sock.settimeout(quiet_s)
    try:
        while True:
            got.append(sock.recv(2048))
    except TimeoutError:
        return got


def introduce(pair, a, b):
    """Both browsers have spoken once (as ICE checks do), so the relay knows both."""
    port_a, port_b = pair.ports
    b.sendto(b"hello-from-b", ("127.0.0.1", port_b))
    a.sendto(b"hello-from-a", ("127.0.0.1", port_a))
    assert b.recv(2048) == b"hello-from-a"
    return port_a, port_b


def test_the_relay_learns_both_ends_and_forwards_both_ways_from_its_own_ports(relay):
    _, pair, a, b, _ = relay
    port_a, port_b = introduce(pair, a, b)
    b.sendto(b"reply", ("127.0.0.1", port_b))
    data, source = a.recvfrom(2048)
    # a sees the reply from the port it sends to: the relay is symmetric, as ICE needs.
    assert data == b"reply" and source == ("127.0.0.1", port_a)


def test_packets_arrive_in_order_through_delay_and_jitter(relay):
    thread, pair, a, b, links = relay
    port_a, _ = introduce(pair, a, b)
    thread.call(lambda: links["up"].set(Impairment(delay_ms=20, jitter_ms=15)))
    for i in range(200):
        a.sendto(i.to_bytes(4, "big"), ("127.0.0.1", port_a))
    got = [int.from_bytes(p, "big") for p in receive_all(b)]
    assert got == list(range(200))


def test_loss_and_outage_drop_and_a_change_applies_while_running(relay):
    thread, pair, a, b, links = relay
    port_a, _ = introduce(pair, a, b)
    thread.call(lambda: links["down"].set(Impairment(loss=0.5)))
    for i in range(400):
        a.sendto(i.to_bytes(4, "big"), ("127.0.0.1", port_a))
    got = receive_all(b)
    assert 120 < len(got) < 280  # binomial(400, 0.5): sd 10
    assert len(got) == links["down"].counts.delivered - 1  # minus the hello, received above
    thread.call(lambda: links["down"].set(Impairment(outage=True)))
    for _ in range(50):
        a.sendto(b"x", ("127.0.0.1", port_a))
    assert receive_all(b) == []
    thread.call(lambda: links["down"].set(CLEAN))
    a.sendto(b"back", ("127.0.0.1", port_a))
    assert b.recv(2048) == b"back"
