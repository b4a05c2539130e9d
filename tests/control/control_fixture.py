"""tests/control/control_fixture.py — starts remora-control on a temp SQLite store and a free
port, and talks to it over gRPC with python3-grpcio: Admin calls as unary_unary with explicit
serializers, and a FakeSidecar that speaks the discovery stream like a sidecar would.

Importing it first makes grpc importable (tests/harness/grpc_python.py: re-executes under
/usr/bin/python3, whose dist-packages hold Debian's python3-grpcio, when needed).
"""
import grpc_python  # noqa: F401  (first: re-execs under /usr/bin/python3 for grpc)

import queue
import shutil
import signal
import subprocess
import threading
import time

import grpc

from remora_harness import Harness, free_port, http_request, runfile, wait_port
from remora.v1 import admin_pb2, config_pb2, discovery_pb2, stats_pb2  # noqa: F401

BINARY = "controlplane/remora-control"

SERVICES = """kind: Service
name: reviews
port: 9080
endpoints:
  - {address: 127.0.0.1:9001, version: v1}
---
kind: Service
name: ratings
port: 9090
"""

ROUTE = """kind: Route
name: reviews-rollout
service: reviews
rules:
  - destinations:
      - {version: v1, weight: %d}
      - {version: v2, weight: %d}
"""


def route(w1=90, w2=10):
    return ROUTE % (w1, w2)


def _ser(msg):
    return msg if isinstance(msg, (bytes, bytearray)) else msg.SerializeToString()


class Control:
    """One remora-control process with its own store directory."""

    def __init__(self, harness, extra=(), store=None, port=None, store_uri=None):
        self.h = harness
        self.port = port or free_port()
        self.store = store or harness.path("store/remora.db")
        # A full --store URI (etcd://...) instead of the SQLite file.
        self.store_uri = store_uri or "sqlite:" + self.store
        self.extra = list(extra)
        self.proc = None
        self.channel = None
        self.start()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        argv = [runfile(BINARY), "--listen", self.target, "--store", self.store_uri,
                "--log-level", "debug"] + self.extra
        self.proc = self.h.start(argv, log_name="remora-control")
        wait_port(self.port, proc=self.proc)
        self.channel = grpc.insecure_channel(self.target)
        grpc.channel_ready_future(self.channel).result(timeout=10)

    def stop(self, sig=signal.SIGTERM):
        """Stops the process with `sig` and returns its exit code."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)

    def restart(self):
        assert self.stop() == 0, self.log()
        self.start()

    def log(self):
        return self.h.log_of(self.proc)

    # ---- Admin ----

    def call(self, method, request, response_cls, timeout=10):
        f = self.channel.unary_unary("/remora.v1.Admin/" + method, request_serializer=_ser,
                                     response_deserializer=response_cls.FromString)
        return f(request, timeout=timeout)

    def raw_call(self, path, data, timeout=10):
        """Sends raw bytes to any method; returns the raw response bytes."""
        f = self.channel.unary_unary(path, request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        return f(data, timeout=timeout)

    def apply(self, source, filename="test.yaml", **kw):
        return self.call("Apply", admin_pb2.ApplyRequest(source=source, filename=filename, **kw),
                         admin_pb2.ApplyResponse, timeout=kw.get("wait") and 60 or 10)

    def get(self, **kw):
        return self.call("Get", admin_pb2.GetRequest(**kw), admin_pb2.GetResponse)

    def delete(self, kind, name, namespace=""):
        return self.call("Delete", admin_pb2.DeleteRequest(kind=kind, name=name,
                                                           namespace=namespace),
                         admin_pb2.DeleteResponse)

    def history(self, limit=0):
        return self.call("History", admin_pb2.HistoryRequest(limit=limit),
                         admin_pb2.HistoryResponse)

    def rollback(self, to_version=0):
        return self.call("Rollback", admin_pb2.RollbackRequest(to_version=to_version),
                         admin_pb2.RollbackResponse)

    def proxy_status(self):
        return self.call("ProxyStatus", admin_pb2.ProxyStatusRequest(),
                         admin_pb2.ProxyStatusResponse)

    def stats(self, **kw):
        return self.call("Stats", admin_pb2.StatsRequest(**kw), admin_pb2.StatsResponse)

    def wait_for_ack(self, version=0, timeout_ms=0):
        req = admin_pb2.WaitForAckRequest(version=version)
        if timeout_ms:
            req.timeout.millis = timeout_ms
        return self.call("WaitForAck", req, admin_pb2.WaitForAckResponse,
                         timeout=timeout_ms / 1000.0 + 30)

    def sidecar(self, **kw):
        return FakeSidecar(self, **kw)

    def wait_connected(self, *pods):
        """Waits until every pod has said Hello (its stream and the Admin calls are separate
        HTTP/2 streams, so their order at the server is not the order we sent them in)."""
        return wait_until(lambda: set(pods) <= {s.pod for s in self.proxy_status().sidecars},
                          what="sidecars %s connected" % (pods,))


def rpc_error(fn, *a, **kw):
    """Runs fn and returns the grpc.RpcError it raised (fails if it did not raise)."""
    try:
        fn(*a, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError("expected an RpcError from %r" % (fn,))


class FakeSidecar:
    """A discovery stream driven from the test: send() queues a message (a DiscoveryRequest or
    raw bytes), snapshots arrive on a queue, and the stream's final status is recorded."""

    def __init__(self, control, pod="pod-1", namespace="default", service="", version="",
                 address="", hello=True, last_config_version=0, egress=(), not_ready=False):
        self.pod = pod
        self.out = queue.Queue()
        self.snapshots = queue.Queue()
        self.done = threading.Event()
        self.error = None
        self.arrived = {}  # nonce -> time.time() when its snapshot was read off the stream
        f = control.channel.stream_stream("/remora.v1.Discovery/Stream",
                                          request_serializer=_ser,
                                          response_deserializer=
                                          discovery_pb2.DiscoveryResponse.FromString)
        self.call = f(self._requests())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if hello:
            node = discovery_pb2.Node(pod=pod, namespace=namespace, service=service,
                                      version=version, address=address, proxy_version="test",
                                      egress=list(egress))
            self.send(discovery_pb2.DiscoveryRequest(
                hello=discovery_pb2.Hello(node=node, last_config_version=last_config_version,
                                          not_ready=not_ready)))

    def _requests(self):
        while True:
            m = self.out.get()
            if m is None:
                return
            yield m

    def _read(self):
        try:
            for resp in self.call:
                self.arrived[resp.snapshot.nonce] = time.time()
                self.snapshots.put(resp.snapshot)
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.done.set()

    def send(self, msg):
        self.out.put(msg)

    def next_snapshot(self, timeout=10):
        try:
            return self.snapshots.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no snapshot within %ss" % (self.pod, timeout))

    def drain_snapshots(self):
        """Every snapshot received and not read yet, without waiting."""
        out = []
        while True:
            try:
                out.append(self.snapshots.get_nowait())
            except queue.Empty:
                return out

    def snapshot_where(self, pred, timeout=10):
        """Reads snapshots until pred(snapshot) holds; returns that snapshot."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("%s: no matching snapshot within %ss" % (self.pod, timeout))
            s = self.next_snapshot(timeout=left)
            if pred(s):
                return s

    def ack(self, snap):
        self.send(discovery_pb2.DiscoveryRequest(
            ack=discovery_pb2.Ack(version=snap.version, nonce=snap.nonce)))

    def nack(self, snap, keep_version, error):
        self.send(discovery_pb2.DiscoveryRequest(
            nack=discovery_pb2.Nack(version=keep_version, nonce=snap.nonce, error=error)))

    def register(self):
        self.send(discovery_pb2.DiscoveryRequest(endpoint=discovery_pb2.EndpointChange(
            kind=discovery_pb2.EndpointChange.REGISTER)))

    def withdraw(self):
        self.send(discovery_pb2.DiscoveryRequest(endpoint=discovery_pb2.EndpointChange(
            kind=discovery_pb2.EndpointChange.WITHDRAW)))

    def close(self):
        """Half-closes the stream (the sidecar is done) and waits for the server to end it."""
        self.out.put(None)
        self.done.wait(timeout=10)

    def cancel(self):
        self.call.cancel()
        self.done.wait(timeout=10)

    def wait_ended(self, timeout=10):
        assert self.done.wait(timeout=timeout), "%s: stream did not end" % self.pod
        return self.error


def endpoints(snap):
    """{(service, version, address): draining} of a snapshot."""
    return {(e.service, e.version, e.address): e.draining for e in snap.endpoints}


ETCD = shutil.which("etcd") or "/usr/bin/etcd"  # Debian's etcd-server


class Etcd:
    """One etcd member on free loopback ports with a temp data dir; stop() and start() keep the
    data and the ports, like an etcd restart."""

    def __init__(self, h):
        self.h = h
        self.client, self.peer = free_port(), free_port()
        self.data = h.path("etcd-data")
        self.proc = None
        self.start()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.client

    def start(self):
        c, p = "http://" + self.target, "http://127.0.0.1:%d" % self.peer
        self.proc = self.h.start([ETCD, "--name", "t", "--data-dir", self.data,
                                  "--listen-client-urls", c, "--advertise-client-urls", c,
                                  "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                                  "--initial-cluster", "t=" + p, "--log-level", "warn"],
                                 log_name="etcd")
        wait_port(self.client, proc=self.proc, timeout=20)
        # etcd accepts connections before its member is ready; /health says when it serves.
        wait_until(self.healthy, timeout=20, what="etcd healthy")

    def healthy(self):
        try:
            r = http_request(self.client, "/health", timeout=2)
            return r.status == 200 and b'"true"' in r.body
        except OSError:
            return False

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


def wait_until(pred, timeout=10, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("%s not reached within %ss" % (what, timeout))


def snapshot_head(data):
    """(version, nonce) of a packed DiscoveryResponse without parsing the rest: remora-control
    (protobuf-c) writes Snapshot.version (1) and nonce (2) first, and a flood test must not spend
    its CPU decoding every endpoint list of hundreds of streams."""
    def varint(b, i):
        v = shift = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7f) << shift
            shift += 7
            if c < 0x80:
                return v, i
    i = 0
    if not data or data[0] != 0x0a:  # DiscoveryResponse.snapshot
        return 0, ""
    _, i = varint(data, 1)
    version, nonce = 0, ""
    if i < len(data) and data[i] == 0x08:
        version, i = varint(data, i + 1)
    if i < len(data) and data[i] == 0x12:
        n, i = varint(data, i + 1)
        nonce = data[i:i + n].decode()
    return version, nonce


class StreamFlood:
    """n discovery streams opened at once from one asyncio loop on a thread (grpc.aio: a thread
    per stream would measure Python, not remora-control), spread over `channels` connections.
    Each says Hello as pod `<prefix>-<i>` of `service` (v1 at a distinct 10.250.x.y:15006
    address, unless address=False), reads its snapshots without decoding the endpoint lists
    (snapshot_head) and ACKs each, like a sidecar.

    started: every Hello has been handed to gRPC. first: every stream got its first snapshot
    (or ended). versions[i]: the newest version stream i received. ended[i]: the stream's final
    grpc status code (None while open)."""

    def __init__(self, control, n, prefix="flood", service="reviews", channels=10, address=True,
                 ack=True, egress_of=None):
        import asyncio
        self.asyncio = asyncio
        self.target = control.target
        self.n = n
        self.prefix, self.service, self.address, self.ack = prefix, service, address, ack
        self.channels_n = channels
        self.egress_of = egress_of
        self.versions = [0] * n
        self.ended = [None] * n
        self.details = [""] * n
        self.got_first = 0
        self.started = threading.Event()
        self.first = threading.Event()
        self.t_started = self.t_first = None
        self.loop = asyncio.new_event_loop()
        self._calls = [None] * n
        self._queues = [None] * n
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self._ready.wait(10)

    def address_of(self, i):
        return "10.250.%d.%d:15006" % (i // 250, i % 250 + 1)

    def _run(self):
        self.asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self):
        import grpc.aio
        self._stop = self.asyncio.Event()
        self._chans = [grpc.aio.insecure_channel(self.target) for _ in range(self.channels_n)]
        for ch in self._chans:
            await ch.channel_ready()
        self._ready.set()
        self.t0 = time.time()
        tasks = [self.asyncio.ensure_future(self._one(i)) for i in range(self.n)]
        # Hellos are written by the tasks' first step: one yield lets every task reach it.
        while sum(1 for c in self._calls if c is not None) < self.n:
            await self.asyncio.sleep(0.001)
        self.t_started = time.time()
        self.started.set()
        await self._stop.wait()
        for c in self._calls:
            c.cancel()
        await self.asyncio.gather(*tasks, return_exceptions=True)
        for ch in self._chans:
            await ch.close()

    def _seen_first(self):
        self.got_first += 1
        if self.got_first == self.n:
            self.t_first = time.time()
            self.first.set()

    async def _one(self, i):
        import grpc.aio
        ch = self._chans[i % len(self._chans)]
        call = ch.stream_stream("/remora.v1.Discovery/Stream", request_serializer=_ser,
                                response_deserializer=lambda b: b)()
        # One writer per stream (gRPC's aio calls take one write at a time): the reader's ACKs
        # and send_all's messages go through this queue.
        out = self.asyncio.Queue()
        self._queues[i] = out
        self._calls[i] = call
        node = discovery_pb2.Node(pod="%s-%d" % (self.prefix, i), namespace="default",
                                  service=self.service, version="v1",
                                  address=self.address_of(i) if self.address else "",
                                  proxy_version="flood",
                                  egress=self.egress_of(i) if self.egress_of else [])
        out.put_nowait(discovery_pb2.DiscoveryRequest(hello=discovery_pb2.Hello(node=node)))

        async def writer():
            while True:
                m = await out.get()
                await call.write(m)

        w = self.asyncio.ensure_future(writer())
        first = True
        try:
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    break
                v, nonce = snapshot_head(msg)
                self.versions[i] = max(self.versions[i], v)
                if first:
                    first = False
                    self._seen_first()
                if self.ack:
                    out.put_nowait(discovery_pb2.DiscoveryRequest(
                        ack=discovery_pb2.Ack(version=v, nonce=nonce)))
        except grpc.aio.AioRpcError as e:
            self.details[i] = e.details() or ""
            self.ended[i] = e.code()
        except self.asyncio.CancelledError:
            pass
        w.cancel()
        if self.ended[i] is None:
            try:
                self.ended[i] = await call.code()
                self.details[i] = await call.details() or ""
            except self.asyncio.CancelledError:
                pass
        if first:
            self._seen_first()

    def send_all(self, make_msg):
        """Queues make_msg(i) on every open stream (from the flood's loop); returns at once."""
        def go():
            for i, q in enumerate(self._queues):
                if q is not None and self.ended[i] is None:
                    q.put_nowait(make_msg(i))
        self.loop.call_soon_threadsafe(go)

    def withdraw_all(self):
        self.send_all(lambda i: discovery_pb2.DiscoveryRequest(
            endpoint=discovery_pb2.EndpointChange(kind=discovery_pb2.EndpointChange.WITHDRAW)))

    def wait_first(self, timeout=60):
        assert self.first.wait(timeout), "%d of %d streams got a first snapshot in %ss" % (
            self.got_first, self.n, timeout)
        return self.t_first - self.t0

    def all_at(self, version):
        return all(v >= version for i, v in enumerate(self.versions) if self.ended[i] is None)

    def close(self):
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(30)
