"""tests/meshctl/meshctl_fixture.py — runs the real meshctl against a real remora-control on a
temp SQLite store, plus what the tests put around it: a python3-grpcio fake sidecar (it can ACK,
NACK or stay silent) and real remora-proxy sidecars in front of test backends.

Importing it first makes grpc importable (tests/harness/grpc_python.py: re-executes under
/usr/bin/python3, whose dist-packages hold Debian's python3-grpcio, when needed).
"""
import grpc_python  # noqa: F401  (first: re-execs under /usr/bin/python3 for grpc)

import json
import os
import queue
import subprocess
import threading
import time

import grpc

from remora_harness import Harness, free_port, http_request, runfile, wait_port  # noqa: F401
from remora.v1 import discovery_pb2

MESHCTL = "controlplane/meshctl/meshctl"
CONTROL = "controlplane/remora-control"

SERVICE = """kind: Service
name: reviews
port: 9080
"""

ROUTE = """kind: Route
name: reviews-rollout
service: reviews
rules:
  - name: canary
    destinations:
      - {version: v1, weight: %d}
      - {version: v2, weight: %d}
"""


def route(w1, w2):
    return ROUTE % (w1, w2)


class Result:
    def __init__(self, rc, out, err):
        self.rc = rc
        self.out = out
        self.err = err

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "rc=%d\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


def wait_until(pred, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("%s not reached within %ss" % (what, timeout))


class Mesh:
    """One remora-control process and a way to run meshctl against it."""

    def __init__(self, harness, extra=()):
        self.h = harness
        self.port = free_port()
        self.server = "127.0.0.1:%d" % self.port
        self.proc = harness.start([runfile(CONTROL), "--listen", self.server, "--store",
                                   "sqlite:" + harness.path("x.db"), "--log-level", "debug"] +
                                  list(extra), log_name="remora-control")
        wait_port(self.port, proc=self.proc)
        self.channel = None

    def meshctl(self, *args, stdin=None, server=True, env=None, timeout=60):
        """Runs meshctl (with --server unless server=False) and returns a Result."""
        argv = [runfile(MESHCTL)]
        if server:
            argv += ["--server", self.server]
        argv += list(args)
        e = dict(os.environ)
        e.pop("MESH_SERVER", None)
        e.update(env or {})
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=e,
                           timeout=timeout, cwd=self.h.tmp)
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *args):
        """Starts meshctl in the background (stdout/stderr piped, text)."""
        return subprocess.Popen([runfile(MESHCTL), "--server", self.server] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.h.tmp)

    def apply(self, text, *args, name="cfg.yaml"):
        self.h.write(name, text)
        return self.meshctl("apply", "-f", name, *args)

    def log(self):
        return self.h.log_of(self.proc)

    # ---- sidecars ----

    def fake_sidecar(self, **kw):
        if self.channel is None:
            self.channel = grpc.insecure_channel(self.server)
        return FakeSidecar(self.channel, **kw)

    def proxy(self, service="", version="", app_port=0):
        """A real remora-proxy under this control plane; returns it with .outbound, .inbound and
        .admin ports."""
        out, inb, adm = free_port(), free_port(), free_port()
        argv = [runfile("dataplane/proxy/remora-proxy"), "--control-plane", self.server,
                "--bind", "127.0.0.1", "--outbound-port", str(out), "--inbound-port", str(inb),
                "--admin-port", str(adm), "--pod", "%s-%s-%d" % (service or "client",
                                                                 version or "x", adm)]
        if service:
            argv += ["--service", service, "--version", version, "--app-port", str(app_port)]
        p = self.h.start(argv, log_name="proxy-%s-%s" % (service or "client", version))
        wait_port(adm, proc=p)
        p.outbound, p.inbound, p.admin = out, inb, adm
        return p

    def close(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None


def _ser(msg):
    return msg.SerializeToString()


class FakeSidecar:
    """A discovery stream driven from the test: snapshots arrive on a queue; ack()/nack()
    answer one."""

    def __init__(self, channel, pod="pod-1", namespace="default", service="reviews",
                 version="v1", address=""):
        self.pod = pod
        self.out = queue.Queue()
        self.snapshots = queue.Queue()
        self.done = threading.Event()
        f = channel.stream_stream("/remora.v1.Discovery/Stream", request_serializer=_ser,
                                  response_deserializer=discovery_pb2.DiscoveryResponse.FromString)
        self.call = f(self._requests())
        threading.Thread(target=self._read, daemon=True).start()
        node = discovery_pb2.Node(pod=pod, namespace=namespace, service=service,
                                  version=version, address=address, proxy_version="test")
        self.out.put(discovery_pb2.DiscoveryRequest(hello=discovery_pb2.Hello(node=node)))

    def _requests(self):
        while True:
            m = self.out.get()
            if m is None:
                return
            yield m

    def _read(self):
        try:
            for resp in self.call:
                self.snapshots.put(resp.snapshot)
        except grpc.RpcError:
            pass
        finally:
            self.done.set()

    def snapshot_where(self, pred, timeout=15):
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("%s: no matching snapshot within %ss" % (self.pod, timeout))
            try:
                s = self.snapshots.get(timeout=left)
            except queue.Empty:
                continue
            if pred(s):
                return s

    def ack(self, snap):
        self.out.put(discovery_pb2.DiscoveryRequest(
            ack=discovery_pb2.Ack(version=snap.version, nonce=snap.nonce)))

    def nack(self, snap, keep_version, error):
        self.out.put(discovery_pb2.DiscoveryRequest(
            nack=discovery_pb2.Nack(version=keep_version, nonce=snap.nonce, error=error)))

    def close(self):
        self.call.cancel()
        self.done.wait(timeout=10)
