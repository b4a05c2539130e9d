"""tests/pods/open_loop.py — an open-loop (fixed-rate) HTTP/1.1 load generator for pods.

Request i is due at start + i/rate whatever happened to the earlier ones, and its latency counts
from that scheduled instant, not from when a connection was free to send it: a stall shows up in
the latency of every request that should have gone out during it (no coordinated omission). One
thread, one selectors loop, up to --connections keep-alive connections opened on demand; a due
request takes an idle connection, opens a new one if the pool allows, or waits in a queue (its
clock already running). Standard library only: it runs under the system python3 inside a pod's
network namespace (`ip netns exec POD python3 open_loop.py ...`), where the pod's rules intercept
its traffic exactly as an app's.

Its own overhead is part of every figure it reports; measure the direct path with it too, and
compare added latency, not absolute latency.

Stops after --seconds, or when stdin closes or a line arrives on it (then it answers what is
still in flight, up to --timeout). Prints one JSON summary line on stdout: requests per method,
successes (status 200), failures with samples, latency percentiles in milliseconds, and with
--records FILE every request as [scheduled, done, method, status or "error", ms] (times in
seconds since the start; the start is "t0_monotonic" in the summary, CLOCK_MONOTONIC, which all
network namespaces share) so a test can look at a time window.

With --tally it also asks the test backend to echo the request headers it saw
(`x-backend-echo-headers: 1`) and reads each 200's JSON body: the summary then counts the
versions and instances that answered, and "through_mesh", the answers whose backend saw two hops
in x-forwarded-for (the client sidecar's and the server sidecar's) — proof a request went
through the mesh. A 200 whose body is not that JSON is a failure ("bad body"). Without --tally no
body is parsed (the benchmark's hot loop stays as cheap as it was).
"""
import argparse
import collections
import errno
import json
import selectors
import socket
import sys
import threading
import time


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.connected = False
        self.req = None  # (index, scheduled, method) of the request in flight
        self.out = b""
        self.buf = b""
        self.sent_at = 0.0


class OpenLoop:
    def __init__(self, args):
        host, port = args.target.rsplit(":", 1)
        self.addr = (host, int(port))
        self.authority = args.authority or args.target
        self.rate = args.rate
        self.max_conns = args.connections
        self.timeout = args.timeout
        self.methods = args.methods.split(",")
        self.path = args.path
        self.tally = args.tally
        headers = list(args.header) + (["x-backend-echo-headers: 1"] if self.tally else [])
        self.extra = "".join("%s\r\n" % h for h in headers)
        self.versions = collections.Counter()
        self.instances = collections.Counter()
        self.through_mesh = 0
        self.sel = selectors.DefaultSelector()
        self.idle = []
        self.conns = set()
        self.queue = collections.deque()
        self.records = []
        self.failures = []
        self.sent = collections.Counter()
        self.ok = collections.Counter()
        self.stop = threading.Event()

    def request_bytes(self, index, method):
        body = b"" if method in ("GET", "HEAD") else b'{"order": %d}' % index
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n%s" % (method, self.path, self.authority, self.extra)
        if body:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        return (head + "\r\n").encode() + body

    def open_conn(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = Conn(s)
        err = s.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            s.close()
            raise OSError(err, "connect: %s" % errno.errorcode.get(err, err))
        self.conns.add(c)
        self.sel.register(s, selectors.EVENT_WRITE, c)
        return c

    def close_conn(self, c):
        if c in self.conns:
            self.conns.discard(c)
            if c in self.idle:
                self.idle.remove(c)
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()

    def finish(self, c, status, detail=""):
        index, scheduled, method = c.req
        now = time.monotonic()
        ms = (now - scheduled) * 1000.0
        self.records.append([round(scheduled - self.t0, 6), round(now - self.t0, 6), method, status,
                             round(ms, 3)])
        self.sent[method] += 1
        if status == 200:
            self.ok[method] += 1
        else:
            self.failures.append([round(scheduled - self.t0, 3), method, status, detail[:160]])
        c.req = None

    def fail_conn(self, c, detail):
        if c.req is not None:
            self.finish(c, "error", detail)
        self.close_conn(c)

    def assign(self, now):
        """Hands queued requests to idle connections, opening new ones while the pool allows."""
        while self.queue:
            if self.idle:
                c = self.idle.pop()
            elif len(self.conns) < self.max_conns:
                try:
                    c = self.open_conn()
                except OSError as e:
                    index, scheduled, method = self.queue.popleft()
                    dummy = Conn(None)
                    dummy.req = (index, scheduled, method)
                    self.finish(dummy, "error", str(e))
                    continue
            else:
                return
            index, scheduled, method = self.queue.popleft()
            c.req = (index, scheduled, method)
            c.out = self.request_bytes(index, method)
            c.buf = b""
            c.sent_at = now
            if c.connected:
                self.flush(c)

    def flush(self, c):
        try:
            n = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as e:
            self.fail_conn(c, "send: %s" % e)
            return
        c.out = c.out[n:]
        self.sel.modify(c.sock, selectors.EVENT_WRITE if c.out else selectors.EVENT_READ, c)

    def on_event(self, c, mask):
        if not c.connected:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail_conn(c, "connect: %s" % errno.errorcode.get(err, err))
                return
            c.connected = True
            if c.req is None:
                self.sel.modify(c.sock, selectors.EVENT_READ, c)
                self.idle.append(c)
                return
            self.flush(c)
            return
        if mask & selectors.EVENT_WRITE and c.out:
            self.flush(c)
            return
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.fail_conn(c, "recv: %s" % e)
            return
        if not data:
            self.fail_conn(c, "closed with %d response bytes" % len(c.buf) if c.req else "idle close")
            return
        if c.req is None:
            self.fail_conn(c, "unexpected bytes on an idle connection")
            return
        c.buf += data
        self.parse(c)

    def parse(self, c):
        if b"\r\n\r\n" not in c.buf:
            return
        head, rest = c.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self.fail_conn(c, "bad status line %r" % lines[0][:80])
            return
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "content-length" not in hdrs:
            self.fail_conn(c, "response without Content-Length (status %d)" % status)
            return
        n = int(hdrs["content-length"])
        if len(rest) < n:
            return
        detail = "" if status == 200 else rest[:n].decode("latin-1")
        if self.tally and status == 200 and not self.count_body(rest[:n]):
            status, detail = "error", "bad body %r" % rest[:80]
        self.finish(c, status, detail)
        if hdrs.get("connection", "").lower() == "close" or len(rest) > n:
            self.close_conn(c)
        else:
            c.buf = b""
            self.idle.append(c)

    def count_body(self, body):
        """--tally: counts who answered (the test backend's JSON body); False if it is not one."""
        try:
            doc = json.loads(body)
            version, instance = doc.get("version", "?"), doc.get("instance", "?")
            # Both sidecars appended to x-forwarded-for (the app's address, then the client
            # sidecar's pod): the request went through the mesh, not around it. (The mesh's own
            # x-remora-* headers never reach an app, so they cannot tell.)
            hdrs = {k.lower(): v for k, v in doc.get("headers", {}).items()}
            hops = [h for h in hdrs.get("x-forwarded-for", "").split(",") if h.strip()]
            saw_mesh = len(hops) >= 2
        except (ValueError, AttributeError):
            return False
        self.versions[version] += 1
        self.instances[instance] += 1
        self.through_mesh += saw_mesh
        return True

    def expire(self, now):
        """A request in flight past --timeout is a failure (its connection is closed)."""
        for c in list(self.conns):
            if c.req is not None and now - c.req[1] > self.timeout:
                self.fail_conn(c, "timeout after %.1fs" % self.timeout)
        while self.queue and now - self.queue[0][1] > self.timeout:
            index, scheduled, method = self.queue.popleft()
            dummy = Conn(None)
            dummy.req = (index, scheduled, method)
            self.finish(dummy, "error", "timeout in queue (no connection free)")

    def run(self, seconds):
        self.t0 = time.monotonic()
        interval = 1.0 / self.rate
        i = 0
        end = self.t0 + seconds
        stopped_at = None
        while True:
            now = time.monotonic()
            if stopped_at is None and (now >= end or self.stop.is_set()):
                stopped_at = now
            if stopped_at is None:
                while self.t0 + i * interval <= now:
                    self.queue.append((i, self.t0 + i * interval, self.methods[i % len(self.methods)]))
                    i += 1
                self.assign(now)
                wait = max(0.0, self.t0 + i * interval - time.monotonic())
            else:
                self.assign(now)
                busy = self.queue or any(c.req is not None for c in self.conns)
                if not busy or now - stopped_at > self.timeout:
                    break
                wait = 0.05
            for key, mask in self.sel.select(min(wait, 0.05)):
                self.on_event(key.data, mask)
            self.expire(time.monotonic())
        for c in list(self.conns):
            self.fail_conn(c, "still in flight at the end")
        self.duration = (stopped_at or time.monotonic()) - self.t0

    def summary(self):
        lat = sorted(r[4] for r in self.records if r[3] == 200)
        total = sum(self.sent.values())
        summary = {"sent": dict(self.sent), "ok": dict(self.ok), "total": total,
                   "failures": len(self.failures), "failure_samples": self.failures[:30],
                   "failed_by_method": dict(collections.Counter(f[1] for f in self.failures)),
                   "duration_s": round(self.duration, 3), "rate": self.rate,
                   "achieved_rps": round(total / self.duration, 1) if self.duration else 0,
                   "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
                   "p99_ms": percentile(lat, 99), "p999_ms": percentile(lat, 99.9),
                   "max_ms": lat[-1] if lat else float("nan"), "connections": self.max_conns,
                   "t0_monotonic": self.t0}
        if self.tally:
            summary.update(versions=dict(self.versions), instances=dict(self.instances),
                           through_mesh=self.through_mesh)
        return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="HOST:PORT to connect to")
    ap.add_argument("--authority", default=None, help="Host header (default: --target)")
    ap.add_argument("--rate", type=float, default=1000, help="requests per second")
    ap.add_argument("--seconds", type=float, default=10, help="how long to send")
    ap.add_argument("--connections", type=int, default=16, help="keep-alive pool bound")
    ap.add_argument("--methods", default="GET", help="comma list, used in turn (GET,POST)")
    ap.add_argument("--path", default="/load")
    ap.add_argument("--header", action="append", default=[], help="extra 'Name: value'")
    ap.add_argument("--timeout", type=float, default=10, help="per request, from its schedule")
    ap.add_argument("--records", default=None, help="write every request here (JSON)")
    ap.add_argument("--tally", action="store_true",
                    help="count answering versions, instances and answers that went through both sidecars")
    ap.add_argument("--stdin-stop", action="store_true", help="a line or EOF on stdin stops")
    args = ap.parse_args()
    load = OpenLoop(args)
    if args.stdin_stop:
        threading.Thread(target=lambda: (sys.stdin.readline(), load.stop.set()),
                         daemon=True).start()
    print("started", flush=True)
    load.run(args.seconds)
    if args.records:
        with open(args.records, "w") as f:
            json.dump(load.records, f)
    print(json.dumps(load.summary()), flush=True)


if __name__ == "__main__":
    main()
