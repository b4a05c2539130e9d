"""tests/strategies/recreate_test.py — recreate: every pod of the service goes away (SIGTERM to
app and sidecar, as the kubelet does), then the new version's pods come up, under
examples/strategies/recreate.yaml. Two probes send requests the whole time through a client
sidecar (one on fresh connections, one on a kept-alive connection): every answer comes within
1 s — a 503 (`no healthy upstream`) in the gap, never a hang or a broken connection — and traffic
recovers to the new version by itself, with no config change."""
import socket
import threading
import time
import unittest

from strategy_fixture import Mesh, example, read_response, wait_until

HANG = 1.0  # seconds: the "never hangs" bound users rely on


class Probe:
    """Sequential GETs to the client sidecar until stopped; records (elapsed, status, version,
    body head) per request, or (elapsed, "error", message)."""

    def __init__(self, port, keepalive):
        self.port, self.keepalive = port, keepalive
        self.records = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)
        return list(self.records)

    def since(self, n):
        with self.lock:
            return self.records[n:]

    def _run(self):
        sock = None
        while not self.stop_flag.is_set():
            t = time.time()
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                sock.sendall(b"GET /probe HTTP/1.1\r\nHost: reviews\r\n\r\n")
                r, _ = read_response(sock, timeout=5)  # 5 s: a hang shows up as > HANG
                rec = (time.time() - t, r.status, r.header("x-backend-version"), r.body[:60])
                if not self.keepalive or r.header("connection") == "close":
                    sock.close()
                    sock = None
            except OSError as e:
                rec = (time.time() - t, "error", str(e), b"")
                if sock is not None:
                    sock.close()
                sock = None
            with self.lock:
                self.records.append(rec)
            time.sleep(0.005)
        if sock is not None:
            sock.close()


class RecreateTest(unittest.TestCase):
    def setUp(self):
        self.mesh = Mesh()
        self.addCleanup(self.mesh.close)

    def test_gap_answers_fast_then_recovers(self):
        m = self.mesh
        old = [m.pod("reviews", "v1", "reviews-v1-%d" % i) for i in range(2)]
        m.wait_ready()
        r = m.apply_file(example("recreate.yaml"), "--wait", "--timeout", "20s")
        self.assertEqual(r.rc, 0, r)
        m.wait_synced()
        m.wait_versions("reviews", ["v1"])
        probes = [Probe(m.client.outbound, keepalive=k).start() for k in (False, True)]
        time.sleep(0.5)

        # Recreate, step 1: every old pod goes away.
        for p in old:
            p.terminate()
        for p in old:
            p.wait_exit()
        marks = [len(p.since(0)) for p in probes]

        def gap_seen():
            return all(any(x[1] == 503 and b"no healthy upstream" in x[3] for x in p.since(n))
                       for p, n in zip(probes, marks))
        wait_until(gap_seen, what="503 no healthy upstream on both probes")
        # In the gap, the answer is always that 503 (outlier ejection or retries change nothing).
        gap = [m.request("reviews", timeout=5) for _ in range(50)]
        self.assertEqual({(x.status, x.body.strip()) for x in gap},
                         {(503, b"no healthy upstream")}, [(x.status, x.body) for x in gap[:3]])

        # Step 2: the new version's pods come up; no config change is made.
        for i in range(2):
            m.pod("reviews", "v2", "reviews-v2-%d" % i)
        m.wait_ready(*m.pods[2:])
        marks = [len(p.since(0)) for p in probes]
        wait_until(lambda: all(any(x[1] == 200 and x[2] == "v2" for x in p.since(n))
                               for p, n in zip(probes, marks)),
                   what="traffic recovered to v2 on both probes")
        time.sleep(0.3)
        records = [p.stop() for p in probes]

        for kind, recs in zip(("fresh connections", "kept-alive connection"), records):
            slow = [x for x in recs if x[0] >= HANG]
            self.assertEqual(slow, [], "%s: answers slower than %.0f s" % (kind, HANG))
            odd = [x for x in recs if x[1] not in (200, 503)]
            self.assertEqual(odd, [], "%s: neither an answer nor a 503" % kind)
            statuses = {}
            for x in recs:
                key = (x[1], x[2] if x[1] == 200 else x[3].strip().decode(errors="replace"))
                statuses[key] = statuses.get(key, 0) + 1
            seq = []  # the order of what users saw, run-length encoded
            for x in recs:
                k = "%s %s" % (x[1], x[2] if x[1] == 200 else x[3].strip().decode(errors="replace"))
                if seq and seq[-1][0] == k:
                    seq[-1][1] += 1
                else:
                    seq.append([k, 1])
            print("%s, in order: %s" % (kind, " -> ".join("%s x%d" % (k, n) for k, n in seq)))
            print("%s: %d requests, slowest %.1f ms: %s" % (
                kind, len(recs), 1000 * max(x[0] for x in recs), statuses))
        counts, failures = m.split("reviews", 200)
        self.assertEqual((dict(counts), failures), ({"v2": 200}, []))


if __name__ == "__main__":
    unittest.main()
