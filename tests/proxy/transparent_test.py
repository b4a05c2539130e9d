"""tests/proxy/transparent_test.py — transparent interception in network namespaces.

Two namespaces joined by a veth pair stand in for a pod and a remote host. In the pod, the same
iptables rule remora-init installs sends outbound TCP to the sidecar's port 15001, except traffic
of uid 1337 (the sidecar itself). The test proves: a request to a Service's vip:port is routed by
the mesh (SO_ORIGINAL_DST → Service), a request to an unknown destination passes through
unchanged, and a non-HTTP protocol to an unknown destination passes through as plain TCP.
Needs root (CI runs as root); skipped otherwise.
"""
import os
import shutil
import socket
import subprocess
import time
import unittest
import uuid

from proxy_fixture import ProxyHarness
from remora_harness import runfile

POD_IP, REMOTE_IP, VIP = "10.77.0.1", "10.77.0.2", "10.96.77.20"


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip") and shutil.which("iptables"),
                     "needs root, iproute2 and iptables")
class TransparentTest(unittest.TestCase):
    def setUp(self):
        tag = uuid.uuid4().hex[:6]
        self.pod, self.remote = "rmpod-" + tag, "rmrem-" + tag
        self.h = ProxyHarness()
        self.addCleanup(self.h.close)
        self.addCleanup(self.teardown_netns)
        sh("ip", "netns", "add", self.pod)
        sh("ip", "netns", "add", self.remote)
        sh("ip", "link", "add", "v" + tag + "a", "type", "veth", "peer", "name", "v" + tag + "b")
        sh("ip", "link", "set", "v" + tag + "a", "netns", self.pod)
        sh("ip", "link", "set", "v" + tag + "b", "netns", self.remote)
        for ns, dev, ip in ((self.pod, "v" + tag + "a", POD_IP), (self.remote, "v" + tag + "b", REMOTE_IP)):
            self.ns(ns, "ip", "addr", "add", ip + "/24", "dev", dev)
            self.ns(ns, "ip", "link", "set", dev, "up")
            self.ns(ns, "ip", "link", "set", "lo", "up")
        # the vip exists nowhere; a route makes the kernel send it out (and the nat rule catch it)
        self.ns(self.pod, "ip", "route", "add", "default", "via", REMOTE_IP)
        # remora-init's outbound rule: everything but the sidecar's own uid and loopback → 15001
        self.ns(self.pod, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-o", "lo", "-j", "RETURN")
        self.ns(self.pod, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-m", "owner",
                "--uid-owner", "1337", "-j", "RETURN")
        self.ns(self.pod, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", "REDIRECT",
                "--to-ports", "15001")

    def ns(self, name, *args):
        return sh("ip", "netns", "exec", name, *args)

    def teardown_netns(self):
        for ns in (self.pod, self.remote):
            sh("ip", "netns", "del", ns, check=False)

    def start_in(self, ns, argv, name, uid=None):
        pre = ["ip", "netns", "exec", ns]
        if uid is not None:
            pre += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
        return self.h.start(pre + argv, log_name=name)

    def wait_in(self, ns, ip, port):
        code = "import socket,time\nfor _ in range(200):\n try:\n  socket.create_connection(('%s',%d),0.2).close();break\n except OSError: time.sleep(0.05)\n" % (ip, port)
        self.ns(ns, "/usr/bin/python3", "-c", code)

    def client(self, code):
        """Runs a Python snippet inside the pod as root (so its traffic is intercepted)."""
        r = sh("ip", "netns", "exec", self.pod, "/usr/bin/python3", "-c", code, check=False)
        if r.returncode != 0:
            self.fail("client failed: %s\nproxy log:\n%s" % (r.stderr, self.h.log_of(self.h.procs[-1])))
        return r.stdout

    def test_vip_routing_and_passthrough(self):
        # the sidecar runs as uid 1337, from a copy every user can read
        bindir = self.h.path("bin")
        os.makedirs(bindir)
        os.chmod(self.h.tmp, 0o755)
        proxy_bin = os.path.join(bindir, "remora-proxy")
        shutil.copy(runfile("dataplane/proxy/remora-proxy"), proxy_bin)
        backend_bin = runfile("tests/backend/remora-test-backend")
        cfg = self.h.write("mesh.yaml", """kind: Service
name: reviews
port: 9080
vip: %s
endpoints:
  - {address: %s:8080, version: v1}
""" % (VIP, REMOTE_IP))
        os.chmod(cfg, 0o644)
        self.start_in(self.remote, [backend_bin, "--listen", "%s:8080" % REMOTE_IP, "--service",
                                    "reviews", "--version", "v1", "--quiet"], "backend")
        echo = "import socket\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('%s',9999));s.listen(5)\nwhile True:\n c,_=s.accept()\n try:\n  c.sendall(b'hello from a server-first protocol\\n');d=c.recv(100);c.sendall(d.upper())\n except OSError: pass\n c.close()\n" % REMOTE_IP
        self.start_in(self.remote, ["/usr/bin/python3", "-c", echo], "echo")
        self.start_in(self.pod, [proxy_bin, "--config", cfg, "--log-level", "debug"], "proxy", uid=1337)
        self.wait_in(self.remote, REMOTE_IP, 8080)
        self.wait_in(self.remote, REMOTE_IP, 9999)
        self.wait_in(self.pod, "127.0.0.1", 15001)

        # 1. the app calls the service's vip: the sidecar routes it (the x-request-id it adds
        #    proves it)
        out = self.client("""import socket
s=socket.create_connection(('%s',9080),5)
s.sendall(b'GET /via-vip HTTP/1.1\\r\\nHost: whatever\\r\\nx-backend-echo-headers: 1\\r\\nConnection: close\\r\\n\\r\\n')
d=b''
while True:
  c=s.recv(65536)
  if not c: break
  d+=c
print(d.decode())""" % VIP)
        self.assertIn("200 OK", out)
        self.assertIn('"path":"/via-vip"', out)
        self.assertIn("x-request-id", out)

        # 2. HTTP to an address the mesh does not know: passes through untouched
        out = self.client("""import socket
s=socket.create_connection(('%s',8080),5)
s.sendall(b'GET /direct HTTP/1.1\\r\\nHost: x\\r\\nx-backend-echo-headers: 1\\r\\nConnection: close\\r\\n\\r\\n')
d=b''
while True:
  c=s.recv(65536)
  if not c: break
  d+=c
print(d.decode())""" % REMOTE_IP)
        self.assertIn('"path":"/direct"', out)
        self.assertNotIn("x-request-id", out)

        # 3. a server-speaks-first, non-HTTP protocol: a plain TCP tunnel
        out = self.client("""import socket
s=socket.create_connection(('%s',9999),5)
greeting=s.recv(100)
s.sendall(b'ping')
print(greeting.decode().strip(), s.recv(100).decode())""" % REMOTE_IP)
        self.assertEqual(out.strip(), "hello from a server-first protocol PING")
        # the interception was real: the sidecar saw these connections
        time.sleep(0.2)
        log = "".join(self.h.log_of(p) for p in self.h.procs)
        self.assertIn("config version 1 loaded", log)


if __name__ == "__main__":
    unittest.main()
