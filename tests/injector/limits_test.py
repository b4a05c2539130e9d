"""tests/injector/limits_test.py — remora-injector's work and slots under clients that abuse them.

- a request head arriving one byte per TLS record is parsed (the head search resumes where it
  stopped rather than rescanning the head after every record, and the head is parsed once, not
  again for every record of the body).
"""
import json
import socket
import unittest

from injector_fixture import Injector, admission_review, decode_patch, read_response


def pod():
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


class LimitsTest(unittest.TestCase):
    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

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


if __name__ == "__main__":
    unittest.main()
