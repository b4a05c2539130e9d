"""tests/proxy/upgrade_test.py — Upgrade (WebSocket-style) handshakes tunnel through the proxy,
and the bytes after the 101 flow both ways untouched."""
import socket
import threading
import time
import unittest

from proxy_fixture import ProxyHarness, service_yaml
from remora_harness import read_response


def echo_upgrade_server(listener):
    """Answers one Upgrade request with 101, then echoes every byte back upper-cased."""
    conn, _ = listener.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, rest = data.split(b"\r\n\r\n", 1)
    ok = b"upgrade: echo" in head.lower() and b"connection: upgrade" in head.lower()
    if not ok:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        conn.close()
        return
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
    if rest:
        conn.sendall(rest.upper())
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            break
        conn.sendall(chunk.upper())
    conn.close()


def open_tunnel(h, extra_config=""):
    """Starts the echo server and a proxy for service "ws" in harness h, and sends the Upgrade
    handshake through it. Returns (client socket, bytes after the head, server thread, listener)
    once the 101 has been checked."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    t = threading.Thread(target=echo_upgrade_server, args=(listener,), daemon=True)
    t.start()
    p = h.proxy(service_yaml("ws", [("127.0.0.1:%d" % port, "v1")]) + extra_config)
    s = socket.create_connection(("127.0.0.1", p.outbound))
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: ws\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
    r, rest = read_response(s)
    assert r.status == 101, r.status
    assert r.header("upgrade") == "echo", r.header("upgrade")
    s.settimeout(5)
    return s, rest, t, listener


class UpgradeTest(unittest.TestCase):
    def test_upgrade_tunnels_both_ways(self):
        with ProxyHarness() as h:
            s, got, t, listener = open_tunnel(h)
            for word in (b"hello", b" tunnel", b" world"):
                s.sendall(word)
            while len(got) < len(b"hello tunnel world"):
                got += s.recv(4096)
            self.assertEqual(got, b"HELLO TUNNEL WORLD")
            s.close()
            t.join(5)
            listener.close()

    def test_tunnel_outlives_the_request_timeout(self):
        # The request timeout covers the handshake; a WebSocket lives as long as both ends keep
        # it open (as Envoy's route timeout stops at the upgrade): it was cut at the timeout.
        with ProxyHarness() as h:
            s, got, t, listener = open_tunnel(h, """---
kind: Route
name: ws
service: ws
rules:
  - name: chat
    timeout: 400ms
    destinations: [{version: v1, weight: 1}]
""")
            for word in (b"before", b" after"):
                s.sendall(word)
                time.sleep(0.7)  # past the 400 ms request timeout each time
            while len(got) < len(b"before after"):
                chunk = s.recv(4096)
                self.assertTrue(chunk, "the proxy cut the tunnel")
                got += chunk
            self.assertEqual(got, b"BEFORE AFTER")
            s.close()
            t.join(5)
            listener.close()

if __name__ == "__main__":
    unittest.main()
