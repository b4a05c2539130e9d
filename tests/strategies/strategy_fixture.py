"""tests/strategies/strategy_fixture.py — a mesh on loopback driven the way a user drives it.

remora-control on a temp SQLite store; "pods" (a test backend, or any app the test brings, plus its
remora-proxy sidecar registered through the control plane); one client sidecar whose outbound port
the test sends through; and the real meshctl run as a subprocess for every config change. Standard
library only (no python grpc): everything the tests observe goes through meshctl, the sidecars'
admin ports and the answers the client gets. Every process is killed when the Mesh closes, even
when the test fails (tests/harness).
"""
import collections
import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from remora_harness import Harness, Load, free_port, http_request, read_response, runfile, wait_port  # noqa: F401

MESHCTL = "controlplane/meshctl/meshctl"
CONTROL = "controlplane/remora-control"
PROXY = "dataplane/proxy/remora-proxy"


def example(name):
    """Path of examples/strategies/NAME (a runfile under Bazel, the source file otherwise)."""
    return runfile("examples/strategies/" + name)


def wait_until(pred, timeout=15, what="condition", interval=0.05):
    """Polls pred until it returns a true value (returned) or raises AssertionError at timeout."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= deadline:
            raise AssertionError("%s not reached within %ss" % (what, timeout))
        time.sleep(interval)


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "rc=%d\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


class CaptureApp:
    """A tiny HTTP app that records the Host of every request it answers (for the shadow test:
    the test backend's echo of Host is in a body the mirror discards)."""

    def __init__(self):
        self.hosts = collections.Counter()
        self.lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with app.lock:
                    app.hosts[self.headers.get("Host", "")] += 1
                body = b'{"version": "v3"}'
                # One write: a head and a body in two segments meet delayed ACKs (40 ms each).
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                self.wfile.flush()

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *a):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 refuses bursts of copies
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return sum(self.hosts.values())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Pod:
    """An app process (or in-test app with .port) plus its sidecar, under the control plane."""

    def __init__(self, mesh, service, version, name, app=None):
        h = mesh.h
        self.name, self.service, self.version = name, service, version
        self.app = app or h.backend(service, version, extra=["--drain-seconds", "2"])
        self.inbound, self.admin = free_port(), free_port()
        self.sidecar = h.start([runfile(PROXY), "--control-plane", mesh.server, "--bind",
                                "127.0.0.1", "--service", service, "--version", version, "--pod",
                                name, "--app-port", str(self.app.port), "--outbound-port", "0",
                                "--inbound-port", str(self.inbound), "--admin-port",
                                str(self.admin), "--drain-grace", "1s", "--drain-seconds", "5"],
                               log_name="sidecar-" + name)
        wait_port(self.admin, proc=self.sidecar)

    def ready(self):
        try:
            return http_request(self.admin, "/ready", timeout=2).status == 200
        except OSError:
            return False

    def terminate(self, sig=signal.SIGTERM):
        """What the kubelet does to a pod: app and sidecar get the signal at once."""
        self.sidecar.send_signal(sig)
        if hasattr(self.app, "send_signal"):
            self.app.send_signal(sig)

    def wait_exit(self, timeout=15):
        self.sidecar.wait(timeout=timeout)
        if hasattr(self.app, "wait"):
            self.app.wait(timeout=timeout)


class Mesh:
    """remora-control, pods, one client sidecar, and meshctl against them."""

    def __init__(self):
        self.h = Harness()
        self.pods = []
        self.closers = []
        try:
            self.port = free_port()
            self.server = "127.0.0.1:%d" % self.port
            self.control = self.h.start([runfile(CONTROL), "--listen", self.server, "--store",
                                         "sqlite:" + self.h.path("store.db")],
                                        log_name="remora-control")
            wait_port(self.port, proc=self.control)
            out, admin = free_port(), free_port()
            self.client = self.h.start([runfile(PROXY), "--control-plane", self.server, "--bind",
                                        "127.0.0.1", "--pod", "client", "--outbound-port",
                                        str(out), "--inbound-port", "0", "--admin-port",
                                        str(admin)], log_name="sidecar-client")
            wait_port(out, proc=self.client)
            self.client.outbound, self.client.admin = out, admin
        except BaseException:
            self.h.close()
            raise

    def close(self):
        self.h.close()
        for c in self.closers:
            c()

    # ---- meshctl, as a user runs it ----

    def meshctl(self, *args, stdin=None, timeout=60):
        e = dict(os.environ)
        e.pop("MESH_SERVER", None)
        p = subprocess.run([runfile(MESHCTL), "--server", self.server] + list(args), input=stdin,
                           capture_output=True, text=True, env=e, timeout=timeout, cwd=self.h.tmp)
        return Result(p.returncode, p.stdout, p.stderr)

    def apply_file(self, path, *args):
        return self.meshctl("apply", "-f", path, *args)

    def apply_text(self, text, *args, name="cfg.yaml"):
        return self.apply_file(self.h.write(name, text), *args)

    def status(self):
        return self.meshctl("proxy-status", "-o", "json").json()

    def wait_synced(self, timeout=20):
        """Every connected sidecar (pods + client) ACKed the config in force."""
        want = len(self.pods) + 1

        def synced():
            j = self.status()
            return len(j["sidecars"]) == want and all(
                s["state"] == "SYNCED" and s["config_version"] == j["current_version"]
                for s in j["sidecars"])
        wait_until(synced, timeout=timeout, what="%d sidecars synced" % want)

    # ---- pods ----

    def pod(self, service, version, name, app=None):
        p = Pod(self, service, version, name, app)
        self.pods.append(p)
        return p

    def capture_pod(self, service, version, name):
        app = CaptureApp()
        self.closers.append(app.close)
        p = self.pod(service, version, name, app)
        p.capture = app
        return p

    def wait_ready(self, *pods, timeout=15):
        pods = pods or self.pods
        wait_until(lambda: all(p.ready() for p in pods), timeout=timeout,
                   what="pods ready: %s" % [p.name for p in pods])

    # ---- traffic through the client sidecar ----

    def request(self, host, path="/", headers=None, timeout=5.0, sock=None):
        h = {"Host": host}
        h.update(headers or {})
        return http_request(self.client.outbound, path, headers=h, timeout=timeout, sock=sock)

    def split(self, host, n, headers=None):
        """n GETs over one keep-alive connection; returns (Counter of version, [failures])."""
        counts, failures = collections.Counter(), []
        sock = None
        for _ in range(n):
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.client.outbound), timeout=5)
                r = self.request(host, headers=headers, sock=sock)
                if r.status == 200:
                    counts[r.header("x-backend-version") or r.json().get("version")] += 1
                else:
                    failures.append((r.status, r.body[:80]))
                if r.header("connection") == "close":
                    sock.close()
                    sock = None
            except OSError as e:
                failures.append(("error", str(e)))
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()
        return counts, failures

    def wait_versions(self, host, versions, headers=None, timeout=15):
        """Until the client sidecar reaches every version in `versions` (registered endpoints are
        pushed to the client on their own, after the pods come up)."""
        want = set(versions)

        def seen():
            c, _ = self.split(host, 30, headers)
            return want <= set(c)
        wait_until(seen, timeout=timeout, what="versions %s reachable" % sorted(want))


def within_sigma(count, n, share, k=4.0):
    """True when count of n draws is within k binomial sigma of share (exact when share is 0/1).
    SPEC promises the split within 3 sigma; the tests allow 4 so that the suite's many
    statistical checks do not make CI flaky (3 sigma fails 0.3% of honest runs, 4 sigma 0.006%)."""
    sigma = (n * share * (1 - share)) ** 0.5
    return abs(count - n * share) <= k * sigma


def VersionLoad(mesh, host, rate=200, connections=4):
    """The shared fixed-rate load (tests/harness Load) against the mesh's client sidecar; its
    stop() returns records (sent_at, answered_at, status or "error", version)."""
    return Load(mesh.client.outbound, host, rate=rate, connections=connections)


