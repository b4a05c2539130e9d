"""tests/injector/init_test.py — remora-init in a network namespace the test makes.

A "pod" namespace and a "peer" namespace joined by a veth pair. remora-init runs in the pod; then
real connections prove the redirection: outbound TCP from the app lands on :15001 (which reads the
original destination with SO_ORIGINAL_DST), the proxy's uid 1337, excluded ports and CIDRs and
loopback go straight out; inbound TCP from the peer lands on :15006 except the admin port and
excluded ports. iptables-save output is compared across two runs (idempotency), a run with other
flags converges to the new rules, and a run without NET_ADMIN fails with a clear message.
--dry-run and bad flags need no root. Namespace tests need root; skipped otherwise.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import uuid

from remora_harness import runfile

POD_IP, PEER_IP, PEER_IP2 = "10.78.0.1", "10.78.0.2", "10.78.0.3"

# Runs inside a namespace: listens on each PORT=TAG and answers every connection with one line
# "TAG <original destination>", the destination read with SO_ORIGINAL_DST when the kernel
# redirected the connection (else the address the client reached).
SERVER = r"""
import socket, struct, sys, threading
SO_ORIGINAL_DST = 80
def serve(port, tag):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            raw = c.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            p, a = struct.unpack("!2xH4s8x", raw)
            dst = "%s:%d" % (socket.inet_ntoa(a), p)
        except OSError:
            dst = "%s:%d" % c.getsockname()
        c.sendall(("%s %s\n" % (tag, dst)).encode()); c.close()
for spec in sys.argv[1:]:
    port, tag = spec.split("=")
    threading.Thread(target=serve, args=(int(port), tag), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
data = b""
while True:
    b = s.recv(100)
    if not b: break
    data += b
print(data.decode().strip())
"""


def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def init_bin():
    return runfile("injector/remora-init")


class InitFlagsTest(unittest.TestCase):
    def test_dry_run_prints_the_rules(self):
        r = sh(init_bin(), "--dry-run", "--exclude-inbound-ports", "8081, 9090",
               "--exclude-outbound-ports", "25", "--exclude-outbound-cidrs", "10.0.0.0/8,1.2.3.4",
               "--iptables", "/sbin/iptables")
        self.assertEqual(r.returncode, 0, r.stderr)
        ipt = "/sbin/iptables -w -t nat "
        self.assertEqual(r.stdout.splitlines(), [ipt + line for line in [
            "-N REMORA_INBOUND",
            "-N REMORA_OUTBOUND",
            "-A REMORA_INBOUND -p tcp --dport 15000 -j RETURN",
            "-A REMORA_INBOUND -p tcp --dport 8081 -j RETURN",
            "-A REMORA_INBOUND -p tcp --dport 9090 -j RETURN",
            "-A REMORA_INBOUND -p tcp -j REDIRECT --to-ports 15006",
            "-A REMORA_OUTBOUND -m owner --uid-owner 1337 -j RETURN",
            "-A REMORA_OUTBOUND -o lo -j RETURN",
            "-A REMORA_OUTBOUND -d 127.0.0.0/8 -j RETURN",
            "-A REMORA_OUTBOUND -p tcp --dport 25 -j RETURN",
            "-A REMORA_OUTBOUND -d 10.0.0.0/8 -j RETURN",
            "-A REMORA_OUTBOUND -d 1.2.3.4/32 -j RETURN",
            "-A REMORA_OUTBOUND -p tcp -j REDIRECT --to-ports 15001",
            "-A PREROUTING -p tcp -j REMORA_INBOUND",
            "-A OUTPUT -p tcp -j REMORA_OUTBOUND",
        ]])

    def test_dry_run_custom_ports(self):
        r = sh(init_bin(), "--dry-run", "--proxy-uid", "2000", "--outbound-port", "16001",
               "--inbound-port", "16006", "--admin-port", "16000")
        self.assertIn("--uid-owner 2000", r.stdout)
        self.assertIn("--to-ports 16001", r.stdout)
        self.assertIn("--to-ports 16006", r.stdout)
        self.assertIn("--dport 16000 -j RETURN", r.stdout)

    def test_bad_flags_one_clear_line(self):
        for args in (["--exclude-inbound-ports", "80;reboot"],
                     ["--exclude-outbound-cidrs", "10.0.0.0/40"],
                     ["--exclude-outbound-cidrs", "-j ACCEPT"],
                     ["--outbound-port", "0"],
                     ["--proxy-uid", "root"],
                     ["--no-such-flag"],
                     ["stray"]):
            with self.subTest(args=args):
                r = sh(init_bin(), "--dry-run", *args, check=False)
                self.assertEqual(r.returncode, 2)
                self.assertEqual(r.stdout, "")
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertTrue(lines[0].startswith("remora-init: "), lines[0])

    def test_help_and_version(self):
        self.assertIn("--dry-run", sh(init_bin(), "--help").stdout)
        self.assertTrue(sh(init_bin(), "--version").stdout.startswith("remora-init "))

    def test_missing_iptables_is_reported(self):
        r = sh(init_bin(), "--iptables", "/nonexistent/iptables", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is iptables installed", r.stderr)


def normalized_nat(save_output):
    """iptables-save -t nat without comments and packet counters."""
    lines = [line for line in save_output.splitlines() if not line.startswith("#")]
    return [re.sub(r"\[\d+:\d+\]", "", line) for line in lines]


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip") and shutil.which("iptables") and
                     shutil.which("setpriv"), "needs root, iproute2, iptables and setpriv")
class InitNetnsTest(unittest.TestCase):
    def setUp(self):
        tag = uuid.uuid4().hex[:6]
        self.pod, self.peer = "rmipod-" + tag, "rmipeer-" + tag
        self.procs = []
        self.addCleanup(self.cleanup)
        sh("ip", "netns", "add", self.pod)
        sh("ip", "netns", "add", self.peer)
        a, b = "vi" + tag + "a", "vi" + tag + "b"
        sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        sh("ip", "link", "set", a, "netns", self.pod)
        sh("ip", "link", "set", b, "netns", self.peer)
        self.ns(self.pod, "ip", "addr", "add", POD_IP + "/24", "dev", a)
        self.ns(self.peer, "ip", "addr", "add", PEER_IP + "/24", "dev", b)
        self.ns(self.peer, "ip", "addr", "add", PEER_IP2 + "/24", "dev", b)
        for ns, dev in ((self.pod, a), (self.peer, b)):
            self.ns(ns, "ip", "link", "set", dev, "up")
            self.ns(ns, "ip", "link", "set", "lo", "up")

    def cleanup(self):
        for p in self.procs:
            p.kill()
            p.wait()
        for ns in (self.pod, self.peer):
            sh("ip", "netns", "del", ns, check=False)

    def ns(self, name, *args, check=True):
        return sh("ip", "netns", "exec", name, *args, check=check)

    def servers(self, ns, **ports):
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER] +
                             ["%d=%s" % (port, tag) for tag, port in ports.items()],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), "ready")

    def connect(self, ns, ip, port, uid=None):
        pre = ["ip", "netns", "exec", ns]
        if uid is not None:
            pre += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
        r = sh(*pre, sys.executable, "-c", CLIENT, ip, str(port), check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def run_init(self, *args):
        r = self.ns(self.pod, init_bin(), *args, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def save(self):
        return normalized_nat(self.ns(self.pod, "iptables-save", "-t", "nat").stdout)

    def test_redirects_real_traffic_and_is_idempotent(self):
        args = ["--exclude-inbound-ports", "8081", "--exclude-outbound-ports", "9090",
                "--exclude-outbound-cidrs", PEER_IP2 + "/32"]
        self.run_init(*args)
        first = self.save()
        self.assertIn("-A OUTPUT -p tcp -j REMORA_OUTBOUND", first)
        self.assertIn("-A PREROUTING -p tcp -j REMORA_INBOUND", first)
        self.assertIn("-A REMORA_OUTBOUND -m owner --uid-owner 1337 -j RETURN", first)
        self.assertIn("-A REMORA_OUTBOUND -p tcp -j REDIRECT --to-ports 15001", first)
        self.assertIn("-A REMORA_INBOUND -p tcp -j REDIRECT --to-ports 15006", first)

        # Second run: exactly the same rules, no duplicate jumps.
        self.run_init(*args)
        self.assertEqual(self.save(), first)

        self.servers(self.pod, outbound=15001, inbound=15006, admin=15000, app=8080, probe=8081)
        self.servers(self.peer, peer=8080, peer9090=9090)

        # Outbound from the app (root here): redirected, original destination preserved.
        self.assertEqual(self.connect(self.pod, PEER_IP, 8080), "outbound %s:8080" % PEER_IP)
        # The proxy's own uid goes straight out, or the proxy would loop into itself.
        self.assertEqual(self.connect(self.pod, PEER_IP, 8080, uid=1337),
                         "peer %s:8080" % PEER_IP)
        # Another uid is intercepted too.
        self.assertEqual(self.connect(self.pod, PEER_IP, 8080, uid=1000),
                         "outbound %s:8080" % PEER_IP)
        # Excluded port and CIDR, and loopback, are not redirected.
        self.assertEqual(self.connect(self.pod, PEER_IP, 9090), "peer9090 %s:9090" % PEER_IP)
        self.assertEqual(self.connect(self.pod, PEER_IP2, 8080), "peer %s:8080" % PEER_IP2)
        self.assertEqual(self.connect(self.pod, "127.0.0.1", 8080), "app 127.0.0.1:8080")

        # Inbound from the peer: redirected to 15006 except the admin port and excluded ports.
        self.assertEqual(self.connect(self.peer, POD_IP, 8080), "inbound %s:8080" % POD_IP)
        self.assertEqual(self.connect(self.peer, POD_IP, 8081), "probe %s:8081" % POD_IP)
        self.assertEqual(self.connect(self.peer, POD_IP, 15000), "admin %s:15000" % POD_IP)

        # Re-running with other flags converges: the old exclusions are gone, not piled up.
        self.run_init()
        third = self.save()
        self.assertNotIn("-A REMORA_OUTBOUND -d %s/32 -j RETURN" % PEER_IP2, third)
        self.assertEqual(third.count("-A OUTPUT -p tcp -j REMORA_OUTBOUND"), 1)
        self.assertEqual(self.connect(self.pod, PEER_IP2, 8080), "outbound %s:8080" % PEER_IP2)
        self.assertEqual(self.connect(self.peer, POD_IP, 8081), "inbound %s:8081" % POD_IP)

    def test_without_net_admin_clear_error(self):
        for pre in (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                    ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"]):
            with self.subTest(pre=pre[:2]):
                r = self.ns(self.pod, *pre, init_bin(), check=False)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("NET_ADMIN", r.stderr)
        self.assertNotIn("REMORA", "\n".join(self.save()))


if __name__ == "__main__":
    unittest.main()
