"""tests/injector/limits_test.py — remora-injector's connection slots under a client that holds them.

The webhook runs with failurePolicy Ignore, so a client that keeps the injector from answering the
API server makes pods start without a sidecar. These tests hold connections from other loopback
addresses (127.0.0.2 and up: all of 127/8 is loopback, so each is a client address of its own) and
check that a client at 127.0.0.1 is still served:

- one address opening more connections than there are slots, as raw TCP stuck in the TLS
  handshake and as TLS connections kept alive idle after a request, is held to
  --max-client-connections of them (its extra ones are refused, or replace its own idle ones);
- many addresses filling every slot between them still leave one for a client that holds fewer;
- an idle kept-alive connection is closed after --idle-timeout (default a few seconds, not 60);
- a request head arriving one byte per TLS record is parsed (the head search resumes where it
  stopped rather than rescanning the head after every record).
"""
import json
import select
import socket
import ssl
import time
import unittest

from injector_fixture import Injector, admission_review, decode_patch, read_response

SLOTS = 512  # remora-injector's connection table
PER_CLIENT = 32  # --max-client-connections default


def pod():
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def still_open(socks, wait=1.0):
    """The sockets the server has not closed: a closed one is readable (EOF, or a TLS alert or
    close_notify), an open idle one is not."""
    deadline = time.time() + wait
    pending = list(socks)
    closed = set()
    while pending and time.time() < deadline:
        readable, _, _ = select.select(pending, [], [], max(0.0, deadline - time.time()))
        if not readable:
            break
        for s in readable:
            closed.add(s)
        pending = [s for s in pending if s not in closed]
    return [s for s in socks if s not in closed]


class LimitsTest(unittest.TestCase):
    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

    def raw(self, inj, source):
        s = socket.create_connection(("127.0.0.1", inj.port), timeout=10,
                                     source_address=(source, 0))
        self.socks.append(s)
        return s

    def tls(self, inj, source):
        raw = self.raw(inj, source)
        s = inj.context().wrap_socket(raw, server_hostname="localhost")
        self.socks[-1] = s
        return s

    def assert_served(self, inj):
        t0 = time.time()
        status, resp = inj.review(admission_review(pod()))
        self.assertEqual(status, 200, inj.logs()[-2000:])
        self.assertIsNotNone(decode_patch(resp))
        self.assertLess(time.time() - t0, 5, "served, but only after the stalled connections ended")

    def test_one_address_stuck_in_handshakes_is_bounded(self):
        inj = Injector("--request-timeout", "60")
        self.addCleanup(inj.close)
        # More connections than there are slots, each stopping inside its ClientHello.
        for _ in range(SLOTS + 8):
            s = self.raw(inj, "127.0.0.2")
            s.sendall(b"\x16\x03\x01\x00")
        time.sleep(0.5)
        self.assert_served(inj)
        self.assertEqual(len(still_open(self.socks)), PER_CLIENT)
        self.assertIn("127.0.0.2", inj.logs())  # the refusals are logged, naming the address

    def test_one_address_with_idle_tls_connections_is_bounded(self):
        inj = Injector()
        self.addCleanup(inj.close)
        # Each completes its handshake and a request, then sits idle on keep-alive. Past its limit
        # a new one takes the place of the address's own longest-idle one.
        refused = 0
        for _ in range(SLOTS + 8):
            try:
                s = self.tls(inj, "127.0.0.3")
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(read_response(s)[0], 200)
            except (ssl.SSLError, ConnectionError, OSError):
                refused += 1
        self.assert_served(inj)
        self.assertEqual(refused, 0)
        self.assertEqual(len(still_open(self.socks)), PER_CLIENT)

    def test_many_addresses_cannot_take_every_slot(self):
        inj = Injector("--request-timeout", "60")
        self.addCleanup(inj.close)
        # 20 addresses at their limit would be 640 connections: every slot is taken, and the
        # addresses that come last find a slot only by taking one from an address that holds more.
        for i in range(20):
            for _ in range(PER_CLIENT):
                s = self.raw(inj, "127.0.1.%d" % (i + 1))
                s.sendall(b"\x16\x03\x01\x00")
        time.sleep(0.5)
        self.assert_served(inj)
        self.assertLessEqual(len(still_open(self.socks)), SLOTS)
        # And a newcomer holding nothing keeps being served while they stay.
        self.assert_served(inj)

    def test_idle_connection_closed_after_idle_timeout(self):
        inj = Injector("--idle-timeout", "1")
        self.addCleanup(inj.close)
        s = inj.tls_socket()
        self.socks.append(s)
        for _ in range(2):  # kept alive between requests sent back to back
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(read_response(s)[0], 200)
        t0 = time.time()
        s.settimeout(10)
        try:
            data = s.recv(100)
        except (ConnectionError, OSError):
            data = b""
        waited = time.time() - t0
        self.assertEqual(data, b"", "an idle connection must be closed")
        self.assertGreater(waited, 0.8)
        self.assertLess(waited, 5)

    def test_default_idle_timeout_is_seconds(self):
        inj = Injector()
        self.addCleanup(inj.close)
        s = inj.tls_socket()
        self.socks.append(s)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_response(s)[0], 200)
        t0 = time.time()
        s.settimeout(30)
        try:
            data = s.recv(100)
        except socket.timeout:
            self.fail("still open after 30 s idle")
        except (ConnectionError, OSError):
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.time() - t0, 15)

    def test_head_in_one_byte_tls_records(self):
        inj = Injector()
        self.addCleanup(inj.close)
        body = json.dumps(admission_review(pod())).encode()
        # A head just under the 16 KiB limit, then the body, each byte its own TLS record (one
        # send, one record).
        head = (b"POST /inject?timeout=10s HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body))
        head += b"X-Filler: " + b"f" * (16000 - len(head)) + b"\r\n\r\n"
        self.assertLess(len(head), 16384)
        s = inj.tls_socket(timeout=60)
        self.socks.append(s)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(head)):
            s.sendall(head[i:i + 1])
        for i in range(len(body)):
            s.sendall(body[i:i + 1])
        status, _, text = read_response(s)
        self.assertEqual(status, 200, text)
        self.assertIsNotNone(decode_patch(json.loads(text)))
        # Others were served meanwhile, and the connection's next request, in one record, is
        # parsed from its start (the search state of the last one is gone).
        status, _ = inj.review(admission_review(pod()))
        self.assertEqual(status, 200)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_response(s)[0], 200)

    def test_bad_flags(self):
        import subprocess
        from remora_harness import runfile
        for args in (["--idle-timeout", "0"], ["--idle-timeout", "x"],
                     ["--max-client-connections", "0"], ["--max-client-connections", "513"]):
            with self.subTest(args=args):
                r = subprocess.run([runfile("injector/remora-injector"), "--cert", "c", "--key",
                                    "k", *args], capture_output=True, text=True)
                self.assertEqual(r.returncode, 2)
                self.assertIn(args[0], r.stderr)


if __name__ == "__main__":
    unittest.main()
