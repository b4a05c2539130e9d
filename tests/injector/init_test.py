"""tests/injector/init_test.py — remora-init in a network namespace the test makes.

A "pod" namespace and a "peer" namespace joined by a veth pair. remora-init runs in the pod; then
real connections prove the redirection: outbound TCP from the app lands on :15001 (which reads the
original destination with SO_ORIGINAL_DST), the proxy's uid 1337, excluded ports and CIDRs and
loopback go straight out; inbound TCP from the peer lands on :15006 except the admin port and
excluded ports. iptables-save output is compared across two runs (idempotency), a run with other
flags converges to the new rules, and a run without NET_ADMIN fails with a clear message.

The same again over IPv6 in dual-stack namespaces (InitDualStackTest): ip6tables rules mirror the
IPv4 ones, an outbound IPv6 connection lands on [::1]:15001 (where ip6tables' REDIRECT puts
locally made connections) with its original destination readable (IP6T_SO_ORIGINAL_DST), inbound
IPv6 lands on :15006, and IPv6 CIDRs are excluded by ip6tables while IPv4 ones go to iptables.
Without usable IPv6 (disabled in the namespace; ip6tables missing or failing where the pod has no
global IPv6 address) remora-init says so in one line and installs the IPv4 rules; a pod that has a
global IPv6 address and cannot get ip6tables rules fails instead.
--dry-run and bad flags need no root. Namespace tests need root; skipped otherwise.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from remora_harness import runfile

POD_IP, PEER_IP, PEER_IP2 = "10.78.0.1", "10.78.0.2", "10.78.0.3"
POD_IP6, PEER_IP6, PEER_IP6_2 = "fd00:78::1", "fd00:78::2", "fd00:78::3"

# Runs inside a namespace: listens on each PORT=TAG, on 0.0.0.0 and (where IPv6 is enabled) on
# [::] IPv6-only, and answers every connection with one line "TAG <original destination> <local
# address>", the destination read with SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST (the address the
# client dialled, even when the kernel redirected the connection), the local address where the
# connection landed. IPv6 addresses are written [addr]:port.
SERVER = r"""
import socket, struct, sys, threading
SO_ORIGINAL_DST = IP6T_SO_ORIGINAL_DST = 80
def name(family, host, port):
    return ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (host, port)
def serve(s, tag):
    while True:
        c, _ = s.accept()
        local = name(c.family, *c.getsockname()[:2])
        try:
            if c.family == socket.AF_INET6:
                raw = c.getsockopt(socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, 28)
                p, a = struct.unpack("!2xH4x16s4x", raw)
                dst = name(c.family, socket.inet_ntop(socket.AF_INET6, a), p)
            else:
                raw = c.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
                p, a = struct.unpack("!2xH4s8x", raw)
                dst = name(c.family, socket.inet_ntoa(a), p)
        except OSError:
            dst = local
        c.sendall(("%s %s %s\n" % (tag, dst, local)).encode()); c.close()
def listen(family, host, port, tag):
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port)); s.listen(64)
    threading.Thread(target=serve, args=(s, tag), daemon=True).start()
for spec in sys.argv[1:]:
    port, tag = spec.split("=")
    listen(socket.AF_INET, "0.0.0.0", int(port), tag)
    try:
        listen(socket.AF_INET6, "::", int(port), tag)
    except OSError:
        pass  # IPv6 disabled in this namespace
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


def ipv6_enabled_here():
    try:
        with open("/proc/sys/net/ipv6/conf/all/disable_ipv6") as f:
            return f.read().strip() == "0"
    except OSError:
        return False


def rules(ipt, loopback, cidrs):
    return [ipt + " -w -t nat " + line for line in [
        "-N REMORA_INBOUND",
        "-N REMORA_OUTBOUND",
        "-A REMORA_INBOUND -p tcp --dport 15000 -j RETURN",
        "-A REMORA_INBOUND -p tcp --dport 8081 -j RETURN",
        "-A REMORA_INBOUND -p tcp --dport 9090 -j RETURN",
        "-A REMORA_INBOUND -p tcp -j REDIRECT --to-ports 15006",
        "-A REMORA_OUTBOUND -m owner --uid-owner 1337 -j RETURN",
        "-A REMORA_OUTBOUND -o lo -j RETURN",
        "-A REMORA_OUTBOUND -d %s -j RETURN" % loopback,
        "-A REMORA_OUTBOUND -p tcp --dport 25 -j RETURN",
    ] + ["-A REMORA_OUTBOUND -d %s -j RETURN" % c for c in cidrs] + [
        "-A REMORA_OUTBOUND -p tcp -j REDIRECT --to-ports 15001",
        "-A PREROUTING -p tcp -j REMORA_INBOUND",
        "-A OUTPUT -p tcp -j REMORA_OUTBOUND",
    ]]


class InitFlagsTest(unittest.TestCase):
    def test_dry_run_prints_the_rules(self):
        # IPv4 CIDRs go to iptables, IPv6 ones (normalized) to ip6tables.
        r = sh(init_bin(), "--dry-run", "--exclude-inbound-ports", "8081, 9090",
               "--exclude-outbound-ports", "25", "--exclude-outbound-cidrs",
               "10.0.0.0/8,FD00:0::/8, 1.2.3.4,2001:db8::1", "--iptables", "/sbin/iptables",
               "--ip6tables", "/sbin/ip6tables")
        self.assertEqual(r.returncode, 0, r.stderr)
        want = rules("/sbin/iptables", "127.0.0.0/8", ["10.0.0.0/8", "1.2.3.4/32"])
        if ipv6_enabled_here():
            want += rules("/sbin/ip6tables", "::1/128", ["fd00::/8", "2001:db8::1/128"])
            self.assertEqual(r.stderr, "")
        else:
            self.assertIn("IPv4 rules only", r.stderr)
        self.assertEqual(r.stdout.splitlines(), want)

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
                     ["--exclude-outbound-cidrs", "fd00::/129"],
                     ["--exclude-outbound-cidrs", "fe80::1%eth0"],
                     ["--exclude-outbound-cidrs", "::ffff:10.0.0.0/104"],
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
        self.assertIn("--ip6tables", sh(init_bin(), "--help").stdout)
        self.assertTrue(sh(init_bin(), "--version").stdout.startswith("remora-init "))

    def test_missing_iptables_is_reported(self):
        r = sh(init_bin(), "--iptables", "/nonexistent/iptables", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is iptables installed", r.stderr)


def normalized_nat(save_output):
    """iptables-save -t nat without comments and packet counters."""
    lines = [line for line in save_output.splitlines() if not line.startswith("#")]
    return [re.sub(r"\[\d+:\d+\]", "", line) for line in lines]


NEEDS_NETNS = unittest.skipUnless(
    os.geteuid() == 0 and shutil.which("ip") and shutil.which("iptables") and
    shutil.which("ip6tables") and shutil.which("setpriv"),
    "needs root, iproute2, iptables, ip6tables and setpriv")

# An ip6tables that cannot work, as on a node without IPv6 NAT in its kernel.
BROKEN_IP6TABLES = """#!/bin/sh
echo "ip6tables v1.8.9 (legacy): can't initialize ip6tables table \\`nat': Table does not exist (do you need to insmod?)" >&2
echo "Perhaps ip6tables or your kernel needs to be upgraded." >&2
exit 3
"""


class NetnsCase(unittest.TestCase):
    """A pod namespace and a peer namespace on a veth pair: IPv4 addresses, and IPv6 ones too when
    dual_stack (without duplicate address detection, so they are usable at once)."""
    dual_stack = False

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
        if self.dual_stack:
            self.ns(self.pod, "ip", "addr", "add", POD_IP6 + "/64", "dev", a, "nodad")
            self.ns(self.peer, "ip", "addr", "add", PEER_IP6 + "/64", "dev", b, "nodad")
            self.ns(self.peer, "ip", "addr", "add", PEER_IP6_2 + "/64", "dev", b, "nodad")
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

    def connect_full(self, ns, ip, port, uid=None):
        """"TAG <original destination> <where it landed>" from the listener that answered."""
        pre = ["ip", "netns", "exec", ns]
        if uid is not None:
            pre += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
        r = sh(*pre, sys.executable, "-c", CLIENT, ip, str(port), check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def connect(self, ns, ip, port, uid=None):
        """"TAG <original destination>": which listener answered, and what the client dialled."""
        return " ".join(self.connect_full(ns, ip, port, uid).split()[:2])

    def run_init(self, *args):
        r = self.ns(self.pod, init_bin(), *args, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def save(self, tool="iptables"):
        return normalized_nat(self.ns(self.pod, tool + "-save", "-t", "nat").stdout)

    def broken_ip6tables(self):
        d = tempfile.mkdtemp(prefix="remora-init-test-")
        self.addCleanup(shutil.rmtree, d)
        path = os.path.join(d, "ip6tables")
        with open(path, "w") as f:
            f.write(BROKEN_IP6TABLES)
        os.chmod(path, 0o755)
        return path


@NEEDS_NETNS
class InitNetnsTest(NetnsCase):
    """An IPv4-only pod (IPv6 enabled in its namespace, as it usually is, but only ::1 and
    link-local addresses)."""

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
        self.assertEqual(self.connect_full(self.pod, PEER_IP, 8080),
                         "outbound %s:8080 127.0.0.1:15001" % PEER_IP)
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
        self.assertNotIn("REMORA", "\n".join(self.save("ip6tables")))

    def test_ipv6_enabled_gets_ip6tables_rules_too(self):
        # Even without a global IPv6 address: link-local IPv6 can still leave the pod.
        r = self.run_init("--exclude-outbound-cidrs", PEER_IP2 + ",fd00:78::/64")
        self.assertIn("IPv4 and IPv6", r.stderr)
        v4, v6 = self.save(), self.save("ip6tables")
        self.assertIn("-A REMORA_OUTBOUND -p tcp -j REDIRECT --to-ports 15001", v6)
        self.assertIn("-A REMORA_OUTBOUND -d fd00:78::/64 -j RETURN", v6)
        self.assertNotIn("-A REMORA_OUTBOUND -d %s/32 -j RETURN" % PEER_IP2, v6)
        self.assertIn("-A REMORA_OUTBOUND -d %s/32 -j RETURN" % PEER_IP2, v4)
        self.assertNotIn("fd00:78::/64", "\n".join(v4))

    def assert_ipv4_only(self, r, *words):
        """One line about IPv6, then the summary; IPv4 rules in place, no IPv6 ones."""
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith("remora-init: "), lines[0])
        for w in words:
            self.assertIn(w, lines[0])
        self.assertIn("IPv4 only", lines[1])
        self.assertIn("-A REMORA_OUTBOUND -p tcp -j REDIRECT --to-ports 15001", self.save())

    def test_ipv6_disabled_in_namespace_ipv4_only(self):
        self.ns(self.pod, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        r = self.run_init()
        self.assert_ipv4_only(r, "IPv6 is disabled", "IPv4 rules only")
        self.assertNotIn("REMORA", "\n".join(self.save("ip6tables")))

    def test_ip6tables_missing_or_broken_single_stack_ipv4_only(self):
        r = self.run_init("--ip6tables", "/nonexistent/ip6tables")
        self.assert_ipv4_only(r, "IPv6 rules not installed", "No such file or directory",
                              "no global IPv6 address")
        self.assertNotIn("REMORA", "\n".join(self.save("ip6tables")))
        r = self.run_init("--ip6tables", self.broken_ip6tables())
        self.assert_ipv4_only(r, "IPv6 rules not installed", "can't initialize ip6tables table",
                              "no global IPv6 address")


@NEEDS_NETNS
class InitDualStackTest(NetnsCase):
    """A dual-stack pod: its IPv6 traffic must be redirected just like its IPv4 traffic."""
    dual_stack = True

    def redirected_packets(self, chain):
        """Packets ip6tables' REDIRECT rule of chain took, from ip6tables -t nat -L -v."""
        out = self.ns(self.pod, "ip6tables", "-w", "-t", "nat", "-L", chain, "-n", "-v",
                      "-x").stdout
        lines = [line for line in out.splitlines() if "REDIRECT" in line]
        self.assertEqual(len(lines), 1, out)
        return lines[0], int(lines[0].split()[0])

    def test_ipv6_redirects_real_traffic_and_is_idempotent(self):
        args = ["--exclude-inbound-ports", "8081", "--exclude-outbound-ports", "9090",
                "--exclude-outbound-cidrs", "%s, %s/128" % (PEER_IP2, PEER_IP6_2)]
        r = self.run_init(*args)
        self.assertIn("IPv4 and IPv6", r.stderr)
        first4, first6 = self.save(), self.save("ip6tables")
        for line in ("-A OUTPUT -p tcp -j REMORA_OUTBOUND",
                     "-A PREROUTING -p tcp -j REMORA_INBOUND",
                     "-A REMORA_OUTBOUND -m owner --uid-owner 1337 -j RETURN",
                     "-A REMORA_OUTBOUND -o lo -j RETURN",
                     "-A REMORA_OUTBOUND -d ::1/128 -j RETURN",
                     "-A REMORA_OUTBOUND -d %s/128 -j RETURN" % PEER_IP6_2,
                     "-A REMORA_OUTBOUND -p tcp -j REDIRECT --to-ports 15001",
                     "-A REMORA_INBOUND -p tcp -j REDIRECT --to-ports 15006"):
            self.assertIn(line, first6)
        self.assertNotIn(PEER_IP2, "\n".join(first6))
        self.assertNotIn(PEER_IP6_2, "\n".join(first4))
        self.assertIn("-A REMORA_OUTBOUND -d %s/32 -j RETURN" % PEER_IP2, first4)

        # Second run: the same rules in both tables.
        self.run_init(*args)
        self.assertEqual(self.save(), first4)
        self.assertEqual(self.save("ip6tables"), first6)

        self.servers(self.pod, outbound=15001, inbound=15006, admin=15000, app=8080, probe=8081)
        self.servers(self.peer, peer=8080, peer9090=9090)

        # Outbound IPv6 from the app lands on [::1]:15001 (REDIRECT of a locally made
        # connection), and the original destination can be read back.
        self.assertEqual(self.connect_full(self.pod, PEER_IP6, 8080),
                         "outbound [%s]:8080 [::1]:15001" % PEER_IP6)
        rule, packets = self.redirected_packets("REMORA_OUTBOUND")
        self.assertIn("redir ports 15001", rule)
        self.assertGreater(packets, 0, rule)
        self.assertEqual(self.connect(self.pod, PEER_IP6, 8080, uid=1337),
                         "peer [%s]:8080" % PEER_IP6)
        self.assertEqual(self.connect(self.pod, PEER_IP6, 8080, uid=1000),
                         "outbound [%s]:8080" % PEER_IP6)
        self.assertEqual(self.connect(self.pod, PEER_IP6, 9090), "peer9090 [%s]:9090" % PEER_IP6)
        self.assertEqual(self.connect(self.pod, PEER_IP6_2, 8080), "peer [%s]:8080" % PEER_IP6_2)
        self.assertEqual(self.connect(self.pod, "::1", 8080), "app [::1]:8080")
        self.assertEqual(self.connect(self.pod, POD_IP6, 8080), "app [%s]:8080" % POD_IP6)
        # IPv4 as before, its CIDR exclusion in iptables.
        self.assertEqual(self.connect(self.pod, PEER_IP, 8080), "outbound %s:8080" % PEER_IP)
        self.assertEqual(self.connect(self.pod, PEER_IP2, 8080), "peer %s:8080" % PEER_IP2)

        # Inbound IPv6 from the peer lands on :15006 (on the pod's address, where REDIRECT puts
        # arriving connections) except the admin port and excluded ports.
        self.assertEqual(self.connect_full(self.peer, POD_IP6, 8080),
                         "inbound [%s]:8080 [%s]:15006" % (POD_IP6, POD_IP6))
        rule, packets = self.redirected_packets("REMORA_INBOUND")
        self.assertIn("redir ports 15006", rule)
        self.assertGreater(packets, 0, rule)
        self.assertEqual(self.connect(self.peer, POD_IP6, 8081), "probe [%s]:8081" % POD_IP6)
        self.assertEqual(self.connect(self.peer, POD_IP6, 15000), "admin [%s]:15000" % POD_IP6)

        # Re-running with other flags converges in ip6tables too.
        self.run_init()
        third = self.save("ip6tables")
        self.assertNotIn(PEER_IP6_2, "\n".join(third))
        self.assertEqual(third.count("-A OUTPUT -p tcp -j REMORA_OUTBOUND"), 1)
        self.assertEqual(self.connect(self.pod, PEER_IP6_2, 8080),
                         "outbound [%s]:8080" % PEER_IP6_2)
        self.assertEqual(self.connect(self.peer, POD_IP6, 8081), "inbound [%s]:8081" % POD_IP6)

    def test_global_ipv6_without_ip6tables_fails(self):
        # Carrying on would leave this pod's IPv6 traffic outside the mesh.
        for ip6tables in ("/nonexistent/ip6tables", self.broken_ip6tables()):
            with self.subTest(ip6tables=ip6tables):
                r = self.ns(self.pod, init_bin(), "--ip6tables", ip6tables, check=False)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("failed: %s -w -t nat" % ip6tables, r.stderr)
                self.assertIn("IPv6 address %s" % POD_IP6, r.stderr)
                self.assertIn("bypass the proxy", r.stderr)
                if ip6tables.startswith("/nonexistent"):
                    self.assertIn("is ip6tables installed? (--ip6tables PATH)", r.stderr)


if __name__ == "__main__":
    unittest.main()
