"""tests/harness/remora_harness.py — shared helpers for process-level tests.

Starts the real Remora programs (and the test backend) on loopback, waits for them, talks HTTP over
raw sockets, and guarantees cleanup: every process started through a Harness is killed (its whole
process group) when the harness closes, even when the test fails. Standard library only.
"""
import collections
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request


def runfile(rel):
    """Absolute path of a Bazel runfile (rel is relative to the workspace root), or of the file in
    the source tree when run outside Bazel. REMORA_BIN_DIR overrides binaries' location."""
    override = os.environ.get("REMORA_BIN_DIR")
    if override and os.path.exists(os.path.join(override, os.path.basename(rel))):
        return os.path.join(override, os.path.basename(rel))
    for root in (os.environ.get("TEST_SRCDIR"), os.environ.get("RUNFILES_DIR")):
        if root:
            p = os.path.join(root, "remora", rel)
            if os.path.exists(p):
                return p
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(here))
    for cand in (os.path.join(top, "bazel-bin", rel), os.path.join(top, rel)):
        if os.path.exists(cand):
            return cand
    raise FileNotFoundError(rel)


def free_port():
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Waits until host:port accepts connections; raises if the process died or time ran out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("nothing listening on %s:%d after %.1fs" % (host, port, timeout))


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lowercased name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def json(self):
        return json.loads(self.body.decode())


def read_response(sock, method="GET", timeout=10.0):
    """Reads one HTTP/1.1 response from sock (Content-Length, chunked or until close)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before response head (got %r)" % buf[:200])
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers.append((k.strip().lower(), v.strip()))
    hd = dict(headers)
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, reason, headers, b"", head), rest
    if "chunked" in hd.get("transfer-encoding", ""):
        body = b""
        data = rest
        while True:
            while b"\r\n" not in data:
                more = sock.recv(65536)
                if not more:
                    raise ConnectionError("closed inside chunked body")
                data += more
            size_line, data = data.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                more = sock.recv(65536)
                if not more:
                    raise ConnectionError("closed inside chunk")
                data += more
            if size == 0:
                # trailers: until an empty line
                while not data.startswith(b"\r\n") and b"\r\n\r\n" not in data:
                    data += sock.recv(65536)
                rest = data.split(b"\r\n\r\n", 1)[1] if not data.startswith(b"\r\n") else data[2:]
                return Response(status, reason, headers, body, head), rest
            body += data[:size]
            data = data[size + 2:]
    if "content-length" in hd:
        n = int(hd["content-length"])
        while len(rest) < n:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("closed after %d of %d body bytes" % (len(rest), n))
            rest += more
        return Response(status, reason, headers, rest[:n], head), rest[n:]
    body = rest
    while True:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return Response(status, reason, headers, body, head), b""


class Prefixed:
    """A socket whose first recv returns bytes already read (what read_response left over), for
    reading the next response on the same connection."""

    def __init__(self, sock, prefix):
        self.sock, self.prefix = sock, prefix

    def settimeout(self, t):
        self.sock.settimeout(t)

    def recv(self, n):
        if self.prefix:
            p, self.prefix = self.prefix, b""
            return p
        return self.sock.recv(n)


def http_request(port, path="/", method="GET", headers=None, body=b"", host="127.0.0.1",
                 timeout=10.0, sock=None):
    """Sends one request (a new connection unless sock is given) and returns a Response."""
    own = sock is None
    if own:
        sock = socket.create_connection((host, port), timeout=timeout)
    try:
        hdrs = {"Host": "localhost"}
        hdrs.update(headers or {})
        if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        req = "%s %s HTTP/1.1\r\n" % (method, path)
        req += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs.items()) + "\r\n"
        sock.sendall(req.encode("latin-1") + body)
        resp, _ = read_response(sock, method, timeout)
        return resp
    finally:
        if own:
            sock.close()


def http_get_json(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


class Harness:
    """Owns processes and temp dirs for one test; close() (or `with`) cleans everything."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="remora-test-")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start(self, argv, log_name=None, env=None, **kw):
        log_name = log_name or os.path.basename(argv[0])
        log = open(self.path(log_name + ".%d.log" % len(self.procs)), "wb")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=e,
                             start_new_session=True, **kw)
        p.log_path = log.name
        log.close()
        self.procs.append(p)
        return p

    def log_of(self, proc):
        with open(proc.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def backend(self, service="svc", version="v1", port=None, extra=(), host="127.0.0.1"):
        port = port or free_port()
        p = self.start([runfile("tests/backend/remora-test-backend"), "--listen",
                        "%s:%d" % (host, port), "--service", service, "--version", version,
                        "--instance", "%s-%s-%d" % (service, version, port), "--quiet"] + list(extra),
                       log_name="backend-%s-%s" % (service, version))
        wait_port(port, host=host, proc=p)
        p.port = port
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = []


class Load:
    """Requests at a fixed total rate over keep-alive connections, GET and POST alternating.
    Every non-200 answer and every connection error is recorded in `failures`; every request in
    `records` as (sent_at, answered_at, status or "error", x-backend-version or the error text),
    so a test can ask what the requests sent after some instant got."""

    def __init__(self, port, host, rate=500, connections=10):
        self.port, self.host, self.rate, self.connections = port, host, rate, connections
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.sent = collections.Counter()
        self.ok = collections.Counter()
        self.failures = []
        self.records = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(connections)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        """Stops sending; returns the records."""
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)
        return self.records

    def _run(self, idx):
        interval = self.connections / self.rate
        sock = None
        n = 0
        next_at = time.time() + idx * interval / self.connections
        while not self.stop_flag.is_set():
            delay = next_at - time.time()
            if delay > 0:
                time.sleep(delay)
            # after a stall, resume the rate instead of bursting to catch up
            next_at = max(next_at + interval, time.time() - interval)
            method = "GET" if n % 2 == 0 else "POST"
            n += 1
            sent_at = time.time()
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                body = b"" if method == "GET" else b'{"order": %d}' % n
                hdrs = "Host: %s\r\n" % self.host
                if body:
                    hdrs += "Content-Length: %d\r\n" % len(body)
                sock.sendall(("%s /load HTTP/1.1\r\n%s\r\n" % (method, hdrs)).encode() + body)
                r, _ = read_response(sock, method, timeout=5)
                with self.lock:
                    self.sent[method] += 1
                    self.records.append((sent_at, time.time(), r.status,
                                         r.header("x-backend-version")))
                    if r.status == 200:
                        self.ok[method] += 1
                    else:
                        self.failures.append((method, r.status, r.body[:80]))
                if r.header("connection") == "close":
                    sock.close()
                    sock = None
            except OSError as e:
                with self.lock:
                    self.sent[method] += 1
                    self.records.append((sent_at, time.time(), "error", str(e)))
                    self.failures.append((method, "error", str(e)))
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()
