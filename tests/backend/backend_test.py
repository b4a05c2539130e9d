"""tests/backend/backend_test.py — process-level test of remora-test-backend.

Starts the real binary on an ephemeral loopback port and talks to it over raw sockets: identity,
keep-alive, pipelining, every fault mode, delays, status overrides, the fail rate, request bodies,
the counters and the SIGTERM drain. Standard library only; the helpers live here until the shared
harness (tests/harness) covers them.
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
import unittest

STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) [^\r\n]*$")


def backend_path():
    """The binary: $REMORA_TEST_BACKEND, else the Bazel runfile, else bazel-bin in the tree."""
    override = os.environ.get("REMORA_TEST_BACKEND")
    if override:
        return override
    rel = "tests/backend/remora-test-backend"
    for root in (os.environ.get("TEST_SRCDIR"), os.environ.get("RUNFILES_DIR")):
        if root and os.path.exists(os.path.join(root, "remora", rel)):
            return os.path.join(root, "remora", rel)
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(top, "bazel-bin", rel)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """One running backend process; stop() (or the test's cleanup) always ends it."""

    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [backend_path(), "--listen", "127.0.0.1:%d" % self.port] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.stderr = b""
        deadline = time.monotonic() + 10
        if "--quiet" in args:
            self._probe(deadline)
            return
        # Wait for the startup line rather than probing with a connect, which would be counted.
        while b"listening on" not in self.stderr:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("backend did not start: %r" % self.stderr)
            ready, _, _ = select.select([self.proc.stderr], [], [], left)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    continue
                self.stderr += chunk

    def _probe(self, deadline):
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("backend did not start: %r" % self.stderr)

    def connect(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        return s

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr += self.proc.stderr.read() or b""
        self.proc.stderr.close()
        self.proc.stdout.close()

    def request(self, method="GET", path="/", headers=None, body=b""):
        with self.connect() as s:
            s.sendall(build_request(method, path, headers, body))
            return read_response(s, method)

    def stats(self):
        return self.request("GET", "/__backend/stats").json()


def build_request(method="GET", path="/", headers=None, body=b"", version="1.1"):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: test.local"]
    has_len = False
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
        has_len = has_len or k.lower() in ("content-length", "transfer-encoding")
    if body and not has_len:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict of lowercased name -> value (last wins)
        self.body = body

    def json(self):
        return json.loads(self.body.decode())


class Reader:
    """Buffered reads from a socket, so pipelined responses can be taken one at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed after %d buffered bytes" % len(self.buf))
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self):
        status_line = self.line()
        m = STATUS_LINE.match(status_line)
        if not m:
            raise ValueError("bad status line %r" % status_line)
        headers = {}
        while True:
            line = self.line()
            if not line:
                break
            k, v = line.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        return int(m.group(1)), headers

    def response(self, method="GET"):
        status, headers = self.head()
        while status == 100:
            status, headers = self.head()
        body = b""
        if method == "HEAD" or status in (204, 304):
            pass
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                body += self.exactly(size)
                self.exactly(2)
        elif "content-length" in headers:
            body = self.exactly(int(headers["content-length"]))
        else:
            while True:
                try:
                    self.fill()
                except EOFError:
                    break
            body, self.buf = self.buf, b""
        return Response(status, headers, body)


def read_response(sock, method="GET"):
    return Reader(sock).response(method)


def read_until_close(sock):
    """All bytes until EOF; a reset ends the read too. Returns (bytes, reset?)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, False
        data += chunk


class BackendTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = Backend("--service", "reviews", "--version", "v2", "--instance", "reviews-1")

    @classmethod
    def tearDownClass(cls):
        cls.b.stop()

    def test_identity(self):
        r = self.b.request("GET", "/api/x?q=1", {"x-request-id": "rid-42",
                                                 "x-remora-attempt": "2"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.headers["x-backend-service"], "reviews")
        self.assertEqual(r.headers["x-backend-version"], "v2")
        self.assertEqual(r.headers["x-backend-instance"], "reviews-1")
        self.assertEqual(r.headers["x-request-id"], "rid-42")
        self.assertEqual(r.headers["x-remora-attempt"], "2")
        self.assertTrue(r.body.endswith(b"}\n") and r.body.count(b"\n") == 1)
        j = r.json()
        self.assertEqual(j, {"service": "reviews", "version": "v2", "instance": "reviews-1",
                             "method": "GET", "path": "/api/x?q=1", "body_bytes": 0,
                             "host": "test.local"})
        # No echo unless asked for.
        r = self.b.request("GET", "/", {})
        self.assertNotIn("x-request-id", r.headers)
        self.assertNotIn("headers", r.json())

    def test_header_echo_escapes(self):
        r = self.b.request("GET", '/q"uote', {"x-backend-echo-headers": "1",
                                              "X-Quote": 'say "hi" \\ there',
                                              "X-Dup": "a", "x-dup": "b"})
        j = r.json()
        self.assertEqual(j["path"], '/q"uote')
        self.assertEqual(j["headers"]["x-quote"], 'say "hi" \\ there')
        self.assertEqual(j["headers"]["x-dup"], "a, b")
        self.assertEqual(j["headers"]["host"], "test.local")

    def test_keep_alive_reuse(self):
        before = self.b.stats()["connections"]
        with self.b.connect() as s:
            rd = Reader(s)
            s.sendall(build_request("GET", "/one"))
            r1 = rd.response()
            s.sendall(build_request("POST", "/two", body=b"abc"))
            r2 = rd.response()
        self.assertEqual((r1.status, r1.json()["path"]), (200, "/one"))
        self.assertEqual((r2.status, r2.json()["path"], r2.json()["body_bytes"]),
                         (200, "/two", 3))
        self.assertNotIn("connection", r1.headers)
        # One connection for both requests, plus the one that read the counters.
        self.assertEqual(self.b.stats()["connections"], before + 2)

    def test_pipelined_in_order(self):
        # The first is delayed, so answering in arrival order is what keeps /a first.
        reqs = (build_request("GET", "/a", {"x-backend-delay": "200ms"}) +
                build_request("POST", "/b", body=b"x" * 5000) +
                build_request("GET", "/c", {"x-backend-status": "404"}))
        with self.b.connect() as s:
            s.sendall(reqs)
            rd = Reader(s)
            got = [rd.response() for _ in range(3)]
        self.assertEqual([r.json()["path"] for r in got], ["/a", "/b", "/c"])
        self.assertEqual([r.status for r in got], [200, 200, 404])
        self.assertEqual(got[1].json()["body_bytes"], 5000)

    def test_fault_reset(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-backend-fault": "reset"}))
            data, _ = read_until_close(s)
            self.assertEqual(data, b"")

    def test_fault_close(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-backend-fault": "close"}))
            data, reset = read_until_close(s)
            self.assertEqual((data, reset), (b"", False))

    def test_fault_close_after_headers(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-backend-fault": "close-after-headers"}))
            rd = Reader(s)
            status, headers = rd.head()
            self.assertEqual(status, 200)
            want = int(headers["content-length"])
            self.assertGreater(want, 0)
            rest, _ = read_until_close(s)
            self.assertLess(len(rd.buf + rest), want)

    def test_fault_reset_mid_body(self):
        n = 200000
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-backend-fault": "reset-mid-body",
                                                 "x-backend-body-bytes": str(n)}))
            rd = Reader(s)
            status, headers = rd.head()
            self.assertEqual(int(headers["content-length"]), n)
            rest, _ = read_until_close(s)
            # The RST waits until the half body has left the send queue, so all of it arrives.
            self.assertEqual(len(rd.buf + rest), n // 2)

    def test_fault_hang(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-backend-fault": "hang"}))
            s.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                s.recv(1)

    def test_fault_malformed(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-backend-fault": "malformed"}))
            with self.assertRaisesRegex(ValueError, "bad status line"):
                Reader(s).head()

    def test_fault_no_read(self):
        with self.b.connect() as s:
            body_len = 64 << 20
            s.sendall(build_request("POST", "/", {"x-backend-fault": "no-read",
                                                  "Content-Length": str(body_len)}))
            # The body cannot all go: the backend stopped reading, so the socket buffers fill.
            s.settimeout(1.0)
            chunk = b"z" * 65536
            sent = 0
            with self.assertRaises(socket.timeout):
                while sent < body_len:
                    sent += s.send(chunk)
            self.assertLess(sent, body_len)
            s.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                s.recv(1)

    def test_bad_control_header(self):
        r = self.b.request("GET", "/", {"x-backend-delay": "soon"})
        self.assertEqual(r.status, 400)
        self.assertIn("x-backend-delay", r.json()["error"])

    def test_delay(self):
        t0 = time.monotonic()
        r = self.b.request("GET", "/", {"x-backend-delay": "300ms"})
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(elapsed, 0.3)

    def test_status_override(self):
        for code in (201, 404, 503, 599):
            r = self.b.request("GET", "/", {"x-backend-status": str(code)})
            self.assertEqual(r.status, code)
            self.assertEqual(r.json()["service"], "reviews")
        r = self.b.request("GET", "/", {"x-backend-status": "204"})
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertNotIn("content-length", r.headers)

    def test_body_bytes_and_chunked_response(self):
        r = self.b.request("GET", "/", {"x-backend-body-bytes": "100000"})
        self.assertEqual(len(r.body), 100000)
        self.assertEqual(r.json()["service"], "reviews")  # padded identity, still JSON
        r = self.b.request("GET", "/", {"x-backend-body-bytes": "70000",
                                        "x-backend-chunked": "1"})
        self.assertEqual(r.headers["transfer-encoding"], "chunked")
        self.assertEqual(len(r.body), 70000)
        r = self.b.request("GET", "/", {"x-backend-body-bytes": "0"})
        self.assertEqual((r.headers["content-length"], r.body), ("0", b""))
        r = self.b.request("HEAD", "/", {"x-backend-body-bytes": "123"})
        self.assertEqual((r.headers["content-length"], r.body), ("123", b""))

    def test_chunked_request_body_counted(self):
        chunks = [b"a" * 1, b"b" * 4096, b"c" * 70000, b"d" * 3]
        body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + \
            b"0\r\nx-trailer: t\r\n\r\n"
        with self.b.connect() as s:
            s.sendall(build_request("POST", "/up", {"Transfer-Encoding": "chunked"}))
            for i in range(0, len(body), 1000):  # in pieces, as a streaming client would
                s.sendall(body[i:i + 1000])
            r = read_response(s)
        self.assertEqual(r.json()["body_bytes"], sum(len(c) for c in chunks))
        r = self.b.request("PUT", "/big", body=b"q" * (3 << 20))
        self.assertEqual(r.json()["body_bytes"], 3 << 20)

    def test_expect_continue(self):
        with self.b.connect() as s:
            s.sendall(build_request("POST", "/", {"Expect": "100-continue",
                                                  "Content-Length": "4"}))
            rd = Reader(s)
            self.assertEqual(rd.head()[0], 100)
            s.sendall(b"body")
            r = rd.response()
        self.assertEqual((r.status, r.json()["body_bytes"]), (200, 4))

    def test_http10(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/old", version="1.0"))
            rd = Reader(s)
            r = rd.response()
            self.assertEqual(r.headers["connection"], "close")
            self.assertEqual(read_until_close(s)[0], b"")

    def test_malformed_request(self):
        with self.b.connect() as s:
            s.sendall(b"GET / HTTX/1.1\r\nHost: x\r\n\r\n")
            r = read_response(s)
            self.assertEqual(r.status, 400)
            self.assertEqual(r.headers["connection"], "close")
            self.assertEqual(read_until_close(s), (b"", False))

    def test_header_limit(self):
        with self.b.connect() as s:
            s.sendall(build_request("GET", "/", {"x-big": "v" * (70 * 1024)}))
            r = read_response(s)
            self.assertEqual(r.status, 431)
            self.assertEqual(r.headers["connection"], "close")

    def test_admin_paths(self):
        r = self.b.request("GET", "/__backend/ready")
        self.assertEqual((r.status, r.json()["ready"]), (200, True))
        self.assertEqual(self.b.request("GET", "/__backend/nope").status, 404)
        self.assertEqual(self.b.request("POST", "/__backend/stats").status, 405)


class FlagsTest(unittest.TestCase):
    def run_backend(self, *args):
        p = subprocess.run([backend_path()] + list(args), capture_output=True, timeout=10)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_help_and_version(self):
        rc, out, _ = self.run_backend("--help")
        self.assertEqual(rc, 0)
        self.assertIn("--fail-rate", out)
        rc, out, _ = self.run_backend("--version")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("remora-test-backend "))

    def test_bad_flags(self):
        for args in (["--bogus"], ["--delay", "5"], ["--status", "700"], ["--listen"],
                     ["--fail-rate", "101"], ["--listen", "nohostport"], ["stray"],
                     ["--body-bytes", "-1"], ["--drain-seconds", "x"]):
            rc, out, err = self.run_backend(*args)
            self.assertEqual(rc, 2, args)
            self.assertEqual(len(err.strip().splitlines()), 1, (args, err))
            self.assertTrue(err.startswith("remora-test-backend: "), err)

    def test_flag_defaults_override(self):
        b = Backend("--status", "202", "--delay", "200ms", "--body-bytes", "500", "--chunked",
                    "--close-after", "2", "--quiet")
        try:
            with b.connect() as s:
                rd = Reader(s)
                t0 = time.monotonic()
                s.sendall(build_request("GET", "/1"))
                r1 = rd.response()
                self.assertGreaterEqual(time.monotonic() - t0, 0.2)
                s.sendall(build_request("GET", "/2", {"x-backend-delay": "0",
                                                      "x-backend-status": "200"}))
                r2 = rd.response()
                self.assertEqual(read_until_close(s), (b"", False))
            self.assertEqual((r1.status, len(r1.body)), (202, 500))
            self.assertEqual(r1.headers["transfer-encoding"], "chunked")
            self.assertNotIn("connection", r1.headers)
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.headers["connection"], "close")  # --close-after 2
        finally:
            b.stop()
        self.assertEqual(b.stderr, b"")  # --quiet


class CountersTest(unittest.TestCase):
    def test_fail_rate_exact(self):
        b = Backend("--fail-rate", "10", "--fail-status", "502")
        try:
            statuses = []
            with b.connect() as s:
                rd = Reader(s)
                for i in range(200):
                    s.sendall(build_request("GET", "/f"))
                    statuses.append(rd.response().status)
            failed = [i + 1 for i, st in enumerate(statuses) if st == 502]
            self.assertEqual(failed, list(range(10, 201, 10)))  # every 10th, exactly
            self.assertEqual(statuses.count(200), 180)
        finally:
            b.stop()

    def test_fail_rate_fraction(self):
        b = Backend("--fail-rate", "2.5")
        try:
            with b.connect() as s:
                rd = Reader(s)
                n503 = 0
                for _ in range(400):
                    s.sendall(build_request("GET", "/f"))
                    n503 += rd.response().status == 503
            self.assertEqual(n503, 10)
        finally:
            b.stop()

    def test_stats_counts(self):
        b = Backend()
        try:
            zero = b.stats()
            self.assertEqual(zero, {"requests": 0, "by_status": {}, "by_method": {},
                                    "connections": 1, "active": 1, "faults": 0})
            b.request("GET", "/")
            b.request("GET", "/", {"x-backend-status": "503"})
            b.request("POST", "/", body=b"hello")
            with b.connect() as s:
                s.sendall(build_request("GET", "/", {"x-backend-fault": "close"}))
                read_until_close(s)
            st = b.stats()
            self.assertEqual(st["requests"], 4)
            self.assertEqual(st["by_status"], {"200": 2, "503": 1})
            self.assertEqual(st["by_method"], {"GET": 3, "POST": 1})
            self.assertEqual(st["faults"], 1)
            self.assertEqual(st["connections"], 6)  # 4 above plus 2 stats reads
            self.assertEqual(st["active"], 1)  # this stats connection
            # Reading the counters does not move them.
            self.assertEqual(b.stats()["requests"], 4)
        finally:
            b.stop()


class DrainTest(unittest.TestCase):
    def test_sigterm_drain(self):
        b = Backend("--drain-seconds", "10")
        try:
            idle = b.connect()
            busy = b.connect()
            busy.sendall(build_request("GET", "/slow", {"x-backend-delay": "1500ms"}))
            # The request must be in the backend before the signal: wait until it is counted.
            deadline = time.monotonic() + 5
            while b.stats()["requests"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            t0 = time.monotonic()
            b.proc.send_signal(signal.SIGTERM)

            # New connections are refused at once.
            refused = False
            while time.monotonic() < t0 + 1.0:
                try:
                    socket.create_connection(("127.0.0.1", b.port), timeout=0.2).close()
                    time.sleep(0.01)
                except ConnectionRefusedError:
                    refused = True
                    break
            self.assertTrue(refused, "listener still accepting after SIGTERM")

            # A keep-alive connection still gets answers, now with connection: close.
            idle.sendall(build_request("GET", "/__backend/ready"))
            r = read_response(idle)
            self.assertEqual(r.status, 503)
            self.assertEqual(r.headers["connection"], "close")
            idle.close()

            # The in-flight delayed request completes, with connection: close.
            r = read_response(busy)
            self.assertEqual((r.status, r.json()["path"]), (200, "/slow"))
            self.assertEqual(r.headers["connection"], "close")
            self.assertEqual(read_until_close(busy), (b"", False))
            busy.close()

            self.assertEqual(b.proc.wait(timeout=8), 0)
            self.assertLess(time.monotonic() - t0, 8)
        finally:
            b.stop()
        self.assertIn(b"draining\n", b.stderr)

    def test_drain_deadline(self):
        # A hung request holds the drain only until --drain-seconds.
        b = Backend("--drain-seconds", "1")
        try:
            s = b.connect()
            s.sendall(build_request("GET", "/", {"x-backend-fault": "hang"}))
            deadline = time.monotonic() + 5
            while b.stats()["faults"] < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            t0 = time.monotonic()
            b.proc.send_signal(signal.SIGTERM)
            self.assertEqual(b.proc.wait(timeout=8), 0)
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)
            s.close()
        finally:
            b.stop()

    def test_idle_exits_at_once(self):
        b = Backend("--drain-seconds", "30")
        try:
            b.request("GET", "/")
            b.proc.send_signal(signal.SIGINT)
            self.assertEqual(b.proc.wait(timeout=8), 0)
        finally:
            b.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
