"""tests/injector/badinput_test.py — remora-injector under bad input: every case gets a clear 4xx
with a message (or is closed), and the server keeps serving good requests throughout."""
import json
import socket
import subprocess
import time
import unittest

from injector_fixture import Injector, admission_review, decode_patch


def pod():
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inj = Injector("--request-timeout", "2")

    @classmethod
    def tearDownClass(cls):
        cls.inj.close()

    def tearDown(self):
        # Whatever a case did, the server still answers a good review.
        status, resp = self.inj.review(admission_review(pod()))
        self.assertEqual(status, 200, "server broken after the case; log:\n" + self.inj.logs())
        self.assertIsNotNone(decode_patch(resp))

    def post(self, body):
        return self.inj.request("POST", "/inject", body)

    def assert_400(self, body, *words):
        status, hdrs, text = self.post(body)
        self.assertEqual(status, 400, text)
        self.assertTrue(hdrs["content-type"].startswith("text/plain"))
        msg = text.decode()
        self.assertTrue(msg.startswith("remora-injector: "), msg)
        for w in words:
            self.assertIn(w, msg)

    def test_malformed_json(self):
        self.assert_400(b"{not json", "malformed JSON", "line 1")
        self.assert_400(b"", "malformed JSON")
        self.assert_400(b"[1,2,3]", "not a JSON object")

    def test_truncated_json(self):
        body = json.dumps(admission_review(pod())).encode()
        self.assert_400(body[: len(body) // 2], "malformed JSON")

    def test_wrong_api_version(self):
        r = admission_review(pod())
        r["apiVersion"] = "admission.k8s.io/v1beta1"
        self.assert_400(json.dumps(r).encode(), "apiVersion", "v1beta1")

    def test_wrong_kind(self):
        r = admission_review(pod())
        r["kind"] = "TokenReview"
        self.assert_400(json.dumps(r).encode(), "kind must be AdmissionReview")

    def test_missing_request(self):
        r = admission_review(pod())
        del r["request"]
        self.assert_400(json.dumps(r).encode(), "no request")

    def test_missing_or_empty_uid(self):
        for uid in (None, "", 42):
            r = admission_review(pod())
            if uid is None:
                del r["request"]["uid"]
            else:
                r["request"]["uid"] = uid
            self.assert_400(json.dumps(r).encode(), "request.uid")

    def test_missing_object(self):
        r = admission_review(pod())
        del r["request"]["object"]
        self.assert_400(json.dumps(r).encode(), "request.object")
        r["request"]["object"] = "a string"
        self.assert_400(json.dumps(r).encode(), "request.object")

    def test_pod_without_containers(self):
        p = pod()
        p["spec"]["containers"] = []
        self.assert_400(json.dumps(admission_review(p)).encode(), "no containers")
        del p["spec"]
        self.assert_400(json.dumps(admission_review(p)).encode(), "spec")

    def test_missing_kind_or_operation(self):
        r = admission_review(pod())
        del r["request"]["kind"]
        self.assert_400(json.dumps(r).encode(), "request.kind")
        r = admission_review(pod())
        del r["request"]["operation"]
        self.assert_400(json.dumps(r).encode(), "request.operation")

    def test_huge_body_413(self):
        # Declared size over 1 MiB: answered from the head alone, the body is never read.
        status, hdrs, text = self.inj.request("POST", "/inject", b"",
                                              {"Content-Length": str(2 * 1024 * 1024)})
        self.assertEqual(status, 413, text)
        self.assertIn(b"1 MiB", text)
        self.assertEqual(hdrs.get("connection"), "close")

    def test_body_just_under_limit_is_read(self):
        r = admission_review(pod())
        r["request"]["object"]["metadata"]["annotations"] = {"filler": "x" * (1024 * 1024 - 4096)}
        body = json.dumps(r).encode()
        self.assertLess(len(body), 1024 * 1024)
        status, _, text = self.post(body)
        self.assertEqual(status, 200)
        self.assertIn("patch", json.loads(text)["response"])

    def test_wrong_method_and_path(self):
        status, hdrs, text = self.inj.request("GET", "/inject")
        self.assertEqual(status, 405)
        self.assertEqual(hdrs.get("allow"), "POST")
        self.assertIn(b"POST", text)
        status, _, text = self.inj.request("PUT", "/inject", b"{}")
        self.assertEqual(status, 405)
        status, _, text = self.inj.request("POST", "/mutate", b"{}")
        self.assertEqual(status, 404)
        self.assertIn(b"/inject", text)

    def test_no_content_length_or_chunked(self):
        status, _, text = self.inj.request("POST", "/inject", b"", {"Content-Length": None})
        self.assertEqual(status, 411)
        status, _, text = self.inj.request("POST", "/inject", b"",
                                           {"Content-Length": None,
                                            "Transfer-Encoding": "chunked"})
        self.assertEqual(status, 411)
        self.assertIn(b"Content-Length", text)

    def test_expect_100_continue(self):
        from injector_fixture import read_response
        body = json.dumps(admission_review(pod())).encode()
        sock = self.inj.tls_socket()
        try:
            sock.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(100)
                self.assertTrue(chunk, "closed before 100 Continue")
                buf += chunk
            self.assertEqual(buf, b"HTTP/1.1 100 Continue\r\n\r\n")
            sock.sendall(body)
            status, _, text = read_response(sock)
            self.assertEqual(status, 200)
            self.assertIn("patch", json.loads(text)["response"])
        finally:
            sock.close()

    def test_garbage_request_line(self):
        sock = self.inj.tls_socket()
        try:
            sock.sendall(b"HELLO\r\n\r\n")
            from injector_fixture import read_response
            status, _, text = read_response(sock)
            self.assertEqual(status, 400)
        finally:
            sock.close()

    def test_plain_http_to_https_port(self):
        with socket.create_connection(("127.0.0.1", self.inj.port), timeout=10) as s:
            s.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data)
        self.assertIn(b"plain HTTP", data)

    def test_curl_plain_http_gets_400(self):
        out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "%{http_code}",
                              "http://127.0.0.1:%d/inject" % self.inj.port, "-d", "{}"],
                             capture_output=True, timeout=30)
        self.assertTrue(out.stdout.endswith(b"400"), out)

    def test_curl_over_tls(self):
        body = json.dumps(admission_review(pod()))
        out = subprocess.run(["curl", "-sS", "--cacert", self.inj.certs + "/ca.crt",
                              "-H", "Content-Type: application/json", "--data-binary", "@-",
                              "https://localhost:%d/inject?timeout=10s" % self.inj.port],
                             input=body.encode(), capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIsNotNone(decode_patch(json.loads(out.stdout)))

    def test_tls_below_1_2_refused(self):
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            self.skipTest("this OpenSSL cannot even offer TLS 1.1")
        with socket.create_connection(("127.0.0.1", self.inj.port), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                ctx.wrap_socket(raw).do_handshake()

    def test_slow_clients_do_not_block_others(self):
        silent = [socket.create_connection(("127.0.0.1", self.inj.port)) for _ in range(20)]
        half = self.inj.tls_socket()
        half.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        try:
            # While those sit, good clients are served.
            for _ in range(3):
                status, resp = self.inj.review(admission_review(pod()))
                self.assertEqual(status, 200)
            # And the server cuts the stalled ones at its request timeout (2s here).
            for s in silent[:3] + [half]:
                s.settimeout(30)
                try:
                    data = s.recv(100)
                except (ConnectionError, OSError):
                    data = b""
                self.assertEqual(data, b"", "a stalled connection must be closed")
        finally:
            for s in silent:
                s.close()
            half.close()

    def test_many_connections_then_good_request(self):
        # From another client address: one address holds at most --max-client-connections
        # (limits_test), so 100 from the good client's own address would refuse it by design.
        socks = []
        try:
            for _ in range(100):
                socks.append(socket.create_connection(("127.0.0.1", self.inj.port),
                                                      source_address=("127.0.0.2", 0)))
                socks[-1].sendall(b"\x16\x03\x01\x00")  # start of a ClientHello, then nothing
            t0 = time.time()
            status, _ = self.inj.review(admission_review(pod()))
            self.assertEqual(status, 200)
            self.assertLess(time.time() - t0, 30)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
