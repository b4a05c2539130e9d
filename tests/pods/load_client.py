"""tests/pods/load_client.py — the client pod's app: fixed-rate GET/POST load over keep-alive.

Runs INSIDE a pod's network namespace as root (`ip netns exec POD /usr/bin/python3
load_client.py ...`), so every connection it opens is redirected by remora-init's rules to the
pod's sidecar, exactly as an app's traffic is in Kubernetes. Standard library only, because it
runs under the system python3 in a namespace that has no test runfiles.

It sends requests until stdin closes or a line arrives on it (the caller's "stop"), bounded by
--max-seconds, then prints one JSON summary line on stdout: requests sent and answered 200 per
method, every failure (method, status or error, detail), the versions that answered, and how many
answers show the backend saw x-remora-attempt (the header the client sidecar adds per attempt,
echoed back by the test backend) — proof the request really went through the mesh.
"""
import argparse
import collections
import json
import socket
import sys
import threading
import time


def read_response(sock):
    """One HTTP/1.1 response: (status, headers dict, body). Content-Length or until close."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before response head (%d bytes)" % len(buf))
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("closed after %d of %d body bytes" % (len(rest), n))
            rest += more
        return status, headers, rest[:n]
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ConnectionError("chunked response not expected from the test backend")
    while True:
        more = sock.recv(65536)
        if not more:
            break
        rest += more
    headers["connection"] = "close"
    return status, headers, rest


class Load:
    def __init__(self, host, port, authority, rate, connections):
        self.host, self.port, self.authority = host, port, authority
        self.rate, self.connections = rate, connections
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.sent = collections.Counter()
        self.ok = collections.Counter()
        self.versions = collections.Counter()
        self.instances = collections.Counter()
        self.with_attempt = 0
        self.failures = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(connections)]

    def run(self, idx):
        interval = self.connections / self.rate
        sock = None
        n = 0
        next_at = time.time() + idx * interval / self.connections
        while not self.stop_flag.is_set():
            delay = next_at - time.time()
            if delay > 0:
                time.sleep(delay)
            next_at += interval
            method = "GET" if n % 2 == 0 else "POST"
            n += 1
            body = b"" if method == "GET" else b'{"conn": %d, "order": %d}' % (idx, n)
            try:
                if sock is None:
                    sock = socket.create_connection((self.host, self.port), timeout=10)
                hdrs = "Host: %s\r\nx-backend-echo-headers: 1\r\n" % self.authority
                if body:
                    hdrs += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
                sock.sendall(("%s /load HTTP/1.1\r\n%s\r\n" % (method, hdrs)).encode() + body)
                status, headers, rbody = read_response(sock)
                with self.lock:
                    self.sent[method] += 1
                    if status == 200:
                        self.ok[method] += 1
                        try:
                            doc = json.loads(rbody.decode())
                            self.versions[doc.get("version", "?")] += 1
                            self.instances[doc.get("instance", "?")] += 1
                            if "x-remora-attempt" in doc.get("headers", {}):
                                self.with_attempt += 1
                        except ValueError:
                            self.failures.append((method, status, "bad body %r" % rbody[:80]))
                    else:
                        self.failures.append((method, status, rbody[:120].decode("latin-1")))
                if headers.get("connection", "").lower() == "close":
                    sock.close()
                    sock = None
            except (OSError, ValueError, IndexError) as e:
                with self.lock:
                    self.sent[method] += 1
                    self.failures.append((method, "error", str(e)))
                if sock is not None:
                    sock.close()
                sock = None
        if sock is not None:
            sock.close()

    def summary(self):
        with self.lock:
            return {"sent": dict(self.sent), "ok": dict(self.ok),
                    "total": sum(self.sent.values()), "failures": len(self.failures),
                    "failure_samples": self.failures[:20], "versions": dict(self.versions),
                    "instances": dict(self.instances), "with_attempt": self.with_attempt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="HOST:PORT the app calls (a Service vip)")
    ap.add_argument("--authority", default=None, help="Host header (default: --target)")
    ap.add_argument("--rate", type=float, default=200, help="requests per second in total")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--max-seconds", type=float, default=120, help="hard bound on the run")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    load = Load(host, int(port), args.authority or args.target, args.rate, args.connections)
    for t in load.threads:
        t.start()
    print("started", flush=True)
    # stdin closing (or any line) is the stop signal; a reader thread keeps the bound exact
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    stop.wait(args.max_seconds)
    load.stop_flag.set()
    for t in load.threads:
        t.join(15)
    print(json.dumps(load.summary()), flush=True)


if __name__ == "__main__":
    main()
