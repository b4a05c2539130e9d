"""tests/proxy/badinput_test.py — request smuggling and malformed HTTP are refused with the right
status and the connection is closed; normal clients are unaffected."""
import socket
import unittest

from proxy_fixture import ProxyHarness, get, service_yaml
from remora_harness import read_response

CASES = [
    # (name, raw request, expected status)
    ("cl and te", b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("duplicate cl", b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
    ("invalid cl", b"POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 4x\r\n\r\nabcd", 400),
    ("te identity chunked", b"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 501),
    ("te xchunked", b"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("te on 1.0", b"POST / HTTP/1.0\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("bare cr", b"GET / HTTP/1.1\r\nHost: svc\rX: y\r\n\r\n", 400),
    ("obs fold", b"GET / HTTP/1.1\r\nHost: svc\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("nul in value", b"GET / HTTP/1.1\r\nHost: svc\r\nX-A: b\x00c\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: svc\r\nX-A : b\r\n\r\n", 400),
    ("missing host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("duplicate host", b"GET / HTTP/1.1\r\nHost: svc\r\nHost: other\r\n\r\n", 400),
    ("http 0.9", b"GET /\r\n\r\n", 505),
    ("http 2.0 line", b"GET / HTTP/2.0\r\nHost: svc\r\n\r\n", 505),
    ("fragment", b"GET /a#b HTTP/1.1\r\nHost: svc\r\n\r\n", 400),
    ("long request line", b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: svc\r\n\r\n", 414),
    ("too many headers", b"GET / HTTP/1.1\r\nHost: svc\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
    ("huge header", b"GET / HTTP/1.1\r\nHost: svc\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
]


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = ProxyHarness()
        cls.backend = cls.h.backend("svc", "v1")
        cls.proxy = cls.h.proxy(service_yaml("svc", [("127.0.0.1:%d" % cls.backend.port, "v1")]))

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def test_each_case_rejected_and_closed(self):
        for name, raw, status in CASES:
            with self.subTest(name):
                s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
                try:
                    s.sendall(raw)
                except OSError:
                    pass
                r, rest = read_response(s, timeout=5)
                self.assertEqual(r.status, status, "%s: %r" % (name, r.raw_head))
                self.assertEqual(r.header("connection"), "close", name)
                s.settimeout(5)
                tail = rest
                try:
                    while True:
                        more = s.recv(65536)
                        if not more:
                            break
                        tail += more
                except ConnectionResetError:
                    pass
                self.assertEqual(tail, b"", "%s: bytes after the error response" % name)
                s.close()
        # nothing reached the backend, and the proxy still serves normal clients
        self.assertEqual(get(self.proxy.outbound, "/").status, 200)

    def test_bad_chunked_body_is_400(self):
        s = socket.create_connection(("127.0.0.1", self.proxy.outbound))
        s.sendall(b"POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"fffffffffffffffff\r\n")
        r, _ = read_response(s, timeout=5)
        self.assertEqual(r.status, 400)
        s.close()


if __name__ == "__main__":
    unittest.main()
