"""tests/pods/pod_runner.py — pods as network namespaces, the way Kubernetes runs them.

A "node" namespace holds a Linux bridge (10.89.0.1/24) and remora-control on 10.89.0.1:15010 with
a temporary SQLite store. Each pod is its own namespace with a veth pair (eth0 in the pod, the
other end on the node's bridge), address 10.89.0.N/24 and a default route via the node. A pod
starts as an injected pod does: remora-init installs the real iptables rules (the init
container), remora-proxy starts as uid 1337 (a native sidecar: before the app), then the app (the
test backend on 0.0.0.0:8080). Readiness is the sidecar's GET :15000/ready probed from the node,
as the kubelet does. A client pod has no app of its own; the test runs its app (open_loop.py)
inside the pod's namespace as root, so its traffic is intercepted.

PodRunner cleans up every namespace (and so every veth and the bridge) and every process it made,
also when a test fails, and removes leftovers carrying its name prefix when it starts (a run that
was SIGKILLed leaves namespaces behind). Needs root, iproute2, iptables, setpriv and curl.
Standard library only. See tests/pods/README.md.
"""
import os
import re
import shutil
import signal
import subprocess
import time

from remora_harness import Harness, runfile

SUBNET = "10.89.0"
NODE_IP = SUBNET + ".1"
CONTROL_PORT = 15010
APP_PORT = 8080
ADMIN_PORT = 15000
PROXY_UID = 1337


def sh(*args, check=True, timeout=60, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True,
                          timeout=timeout, **kw)


def available():
    """True when this process can make pods: root, and the tools on PATH."""
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "iptables", "setpriv",
                                                               "curl"))


def metric_sum(prom_text, name, **labels):
    """Sum of a Prometheus metric's samples whose labels include every label given."""
    total = 0.0
    pat = re.compile(r"^%s(\{[^}]*\})?\s+(\S+)$" % re.escape(name))
    for line in prom_text.splitlines():
        m = pat.match(line)
        if not m:
            continue
        lbl = m.group(1) or ""
        if all('%s="%s"' % (k, v) in lbl for k, v in labels.items()):
            total += float(m.group(2))
    return total


class Pod:
    """One pod: its namespace, address, and processes (app may be None for a client pod)."""

    def __init__(self, runner, name, service, version, ip, ns):
        self.runner, self.name, self.service, self.version = runner, name, service, version
        self.ip, self.ns = ip, ns
        self.app = None
        self.sidecar = None
        self.exit_codes = None
        self.mesh = True

    def __repr__(self):
        return "Pod(%s %s)" % (self.name, self.ip)

    def exec(self, *argv, check=True, timeout=60, **kw):
        """Runs argv inside this pod's namespace as root (intercepted like the app's traffic)."""
        return sh("ip", "netns", "exec", self.ns, *argv, check=check, timeout=timeout, **kw)

    def popen(self, argv, **kw):
        """Starts argv inside this pod's namespace as root; the caller owns the Popen."""
        return subprocess.Popen(["ip", "netns", "exec", self.ns] + list(argv), **kw)

    def ready(self):
        """The kubelet's readiness probe: GET http://POD_IP:15000/ready from the node."""
        code, _ = self.runner.node_http(self.ip, ADMIN_PORT, "/ready")
        return code == 200

    def admin(self, path="/stats"):
        """GET on the sidecar's admin port from inside the pod (loopback is never redirected)."""
        r = self.exec("curl", "-s", "--max-time", "5", "http://127.0.0.1:%d%s" % (ADMIN_PORT, path))
        return r.stdout

    def app_stats(self):
        """The test backend's own counters (None for a client pod)."""
        if self.app is None:
            return None
        r = self.exec("curl", "-s", "--max-time", "5",
                      "http://127.0.0.1:%d/__backend/stats" % APP_PORT)
        return r.stdout

    def terminate(self, timeout=30):
        """What the kubelet does to a pod with classic containers: SIGTERM to app and sidecar at
        once, wait for both to exit, then remove the pod's sandbox (its namespace). Returns
        (sidecar exit code, app exit code); None for a process still running at the timeout,
        which is then killed."""
        self.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def send_signal(self, sig):
        for p in (self.sidecar, self.app):
            if p is not None and p.poll() is None:
                p.send_signal(sig)

    def wait_exit(self, timeout=30):
        codes = []
        end = time.time() + timeout
        for p in (self.sidecar, self.app):
            if p is None:
                codes.append(None)
                continue
            try:
                codes.append(p.wait(timeout=max(0.1, end - time.time())))
            except subprocess.TimeoutExpired:
                codes.append(None)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.exit_codes = tuple(codes)
        self.runner._delete_pod(self)
        return self.exit_codes


class PodRunner:
    """A node with a bridge, remora-control, and pods. Use as a context manager or call setup()
    and close() (close is safe to call twice and after a failed setup)."""

    def __init__(self, prefix="rmpr", drain_seconds=10, log_level="info"):
        # netns names are prefix-NAME; interface names stay inside namespaces (eth0, br0, vpN),
        # so nothing the runner makes lives in the host's namespace
        self.prefix = prefix
        self.node_ns = prefix + "-node"
        self.drain_seconds = drain_seconds
        self.log_level = log_level
        self.h = Harness()
        self.pods = []
        self.control = None
        self.next_octet = 10
        self.counter = 0
        self.events = []  # (seconds since setup, what happened): a rolling update's timeline

    def __enter__(self):
        self.setup()
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- node ----

    def setup(self):
        self.t0 = time.time()
        self.remove_leftovers()
        try:
            self._setup_node()
        except Exception:
            self.close()
            raise
        return self

    def _setup_node(self):
        # uid 1337 must be able to exec the sidecar, so it runs from a world-readable copy
        os.chmod(self.h.tmp, 0o755)
        self.bindir = self.h.path("bin")
        os.makedirs(self.bindir)
        self.bins = {}
        for rel in ("dataplane/proxy/remora-proxy", "tests/backend/remora-test-backend"):
            dst = os.path.join(self.bindir, os.path.basename(rel))
            shutil.copy(runfile(rel), dst)
            os.chmod(dst, 0o755)
            self.bins[os.path.basename(rel)] = dst
        for rel in ("controlplane/remora-control", "controlplane/meshctl/meshctl",
                    "injector/remora-init"):
            self.bins[os.path.basename(rel)] = runfile(rel)

        sh("ip", "netns", "add", self.node_ns)
        self.node("ip", "link", "set", "lo", "up")
        self.node("ip", "link", "add", "br0", "type", "bridge")
        self.node("ip", "addr", "add", NODE_IP + "/24", "dev", "br0")
        self.node("ip", "link", "set", "br0", "up")
        os.makedirs(self.h.path("store"))
        self.start_control()
        self.event("node up: bridge %s/24, remora-control on %s:%d" % (NODE_IP, NODE_IP,
                                                                       CONTROL_PORT))

    def start_control(self):
        """Starts remora-control in the node namespace on the runner's SQLite store (the same
        store across restarts) and waits until it listens."""
        self.control = self.h.start(
            ["ip", "netns", "exec", self.node_ns, self.bins["remora-control"], "--listen",
             "%s:%d" % (NODE_IP, CONTROL_PORT), "--store", "sqlite:" + self.h.path("store/remora.db"),
             "--log-level", self.log_level], log_name="remora-control")
        self.node_wait_port(NODE_IP, CONTROL_PORT, proc=self.control)
        self.event("remora-control up (pid %d)" % self.control.pid)
        return self.control

    def kill_control(self, sig=signal.SIGKILL):
        """Sends sig (default SIGKILL: no goodbye to any stream) to remora-control and, for a
        fatal signal, waits for it to exit."""
        self.control.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.control.wait(timeout=10)
        self.event("remora-control %s" % signal.Signals(sig).name)

    def close(self):
        """Kills every process, deletes every pod namespace and the node. Idempotent."""
        self.h.close()
        for pod in list(self.pods):
            self._delete_pod(pod)
        self._delete_ns(self.node_ns)
        # the logs stay for a failed test to be read (under Bazel, also in the test's outputs:
        # bazel-testlogs/.../test.outputs/outputs.zip); the binaries' copies need not
        shutil.rmtree(self.h.path("bin"), ignore_errors=True)
        out = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if out and os.path.isdir(self.h.tmp):
            dst = os.path.join(out, "pods-" + os.path.basename(self.h.tmp))
            os.makedirs(dst, exist_ok=True)
            for f in os.listdir(self.h.tmp):
                if f.endswith(".log"):
                    shutil.copy(os.path.join(self.h.tmp, f), dst)

    def remove_leftovers(self):
        """Deletes namespaces carrying this runner's prefix (from a run that died) and kills the
        processes still inside them."""
        out = sh("ip", "netns", "list", check=False).stdout
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(self.prefix + "-"):
                self._delete_ns(name)

    def _delete_ns(self, ns):
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", ns, check=False)

    def _delete_pod(self, pod):
        self._delete_ns(pod.ns)
        if pod in self.pods:
            self.pods.remove(pod)

    def event(self, what):
        self.events.append((round(time.time() - self.t0, 2), what))

    def node(self, *argv, check=True, timeout=60, **kw):
        """Runs argv in the node namespace as root."""
        return sh("ip", "netns", "exec", self.node_ns, *argv, check=check, timeout=timeout, **kw)

    def node_http(self, host, port, path, method="GET", timeout=2):
        """(status, body) of one request made from the node namespace; status 0 when nothing
        answered."""
        r = self.node("curl", "-s", "-X", method, "--max-time", str(timeout), "-w",
                      "\n%{http_code}", "http://%s:%d%s" % (host, port, path), check=False)
        body, _, code = r.stdout.rpartition("\n")
        try:
            return int(code), body
        except ValueError:
            return 0, body

    def node_wait_port(self, host, port, timeout=15, proc=None):
        end = time.time() + timeout
        code = ("import socket,sys\ntry:\n socket.create_connection(('%s',%d),0.5).close()\n"
                "except OSError: sys.exit(1)\n" % (host, port))
        while time.time() < end:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("exited with %s before listening on %s:%d:\n%s" % (
                    proc.returncode, host, port, self.h.log_of(proc)))
            if self.node("/usr/bin/python3", "-c", code, check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("nothing listening on %s:%d after %ss" % (host, port, timeout))

    def meshctl(self, *args, stdin=None, check=True):
        """meshctl against the node's control plane; returns the CompletedProcess."""
        r = self.node(self.bins["meshctl"], "--server", "%s:%d" % (NODE_IP, CONTROL_PORT), *args,
                      input=stdin, check=False)
        if check and r.returncode != 0:
            raise RuntimeError("meshctl %s failed (%d): %s%s" % (" ".join(args), r.returncode,
                                                                  r.stdout, r.stderr))
        return r

    def apply(self, config, wait=True):
        return self.meshctl("apply", "-f", "-", *(["--wait"] if wait else []), stdin=config)

    # ---- pods ----

    def start_pod(self, service, version, name=None, wait_ready=True, ready_timeout=30,
                  mesh=True):
        """Creates and starts a pod. service=None makes a client pod (sidecar only, no app).
        mesh=False makes a pod outside the mesh: no remora-init rules and no sidecar (the app
        only, or nothing for a client), for benchmarks' direct paths; its readiness is its app's
        port answering. Returns the Pod, ready unless wait_ready is False. The runner owns the
        pod until terminate()."""
        if self.next_octet > 250:
            raise RuntimeError("pod addresses exhausted")
        octet = self.next_octet
        self.next_octet += 1  # never reused: no stale ARP or conntrack entries from an old pod
        self.counter += 1
        name = name or "%s-%s-%d" % (service or "client", version or "x", self.counter)
        ip = "%s.%d" % (SUBNET, octet)
        pod = Pod(self, name, service, version, ip, "%s-%s" % (self.prefix, name))
        self.pods.append(pod)
        # the sandbox: namespace, veth (eth0 in the pod, vpN on the node's bridge), address, route
        sh("ip", "netns", "add", pod.ns)
        veth = "vp%d" % octet
        self.node("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.ns)
        self.node("ip", "link", "set", veth, "master", "br0")
        self.node("ip", "link", "set", veth, "up")
        pod.exec("ip", "link", "set", "lo", "up")
        pod.exec("ip", "addr", "add", ip + "/24", "dev", "eth0")
        pod.exec("ip", "link", "set", "eth0", "up")
        pod.exec("ip", "route", "add", "default", "via", NODE_IP)
        pod.mesh = mesh
        if not mesh:
            if service:
                pod.app = self._start_app(pod, service, version)
            self.event("started %s (%s, outside the mesh)" % (name, ip))
            if wait_ready and service:
                self.node_wait_port(ip, APP_PORT, timeout=ready_timeout, proc=pod.app)
            return pod
        # the init container: remora-init's real rules
        r = pod.exec(self.bins["remora-init"], check=False)
        if r.returncode != 0:
            raise RuntimeError("remora-init failed in %s: %s" % (pod.name, r.stderr))
        # the sidecar (uid 1337, never redirected), then the app
        argv = ["ip", "netns", "exec", pod.ns, "setpriv", "--reuid=%d" % PROXY_UID,
                "--regid=%d" % PROXY_UID, "--clear-groups", self.bins["remora-proxy"],
                "--control-plane", "%s:%d" % (NODE_IP, CONTROL_PORT), "--pod", name,
                "--pod-ip", ip, "--drain-seconds", str(self.drain_seconds),
                "--log-level", self.log_level]
        if service:
            argv += ["--service", service, "--version", version, "--app-port", str(APP_PORT)]
        pod.sidecar = self.h.start(argv, log_name="sidecar-" + name)
        if service:
            pod.app = self._start_app(pod, service, version)
        self.event("started %s (%s)" % (name, ip))
        if wait_ready:
            self.wait_ready(pod, timeout=ready_timeout)
        return pod

    def _start_app(self, pod, service, version):
        return self.h.start(
            ["ip", "netns", "exec", pod.ns, self.bins["remora-test-backend"], "--listen",
             "0.0.0.0:%d" % APP_PORT, "--service", service, "--version", version,
             "--instance", pod.name, "--drain-seconds", "5", "--quiet"],
            log_name="app-" + pod.name)

    def wait_ready(self, *pods, timeout=30):
        end = time.time() + timeout
        pending = list(pods)
        while pending:
            for p in pods:
                for proc in (p.sidecar, p.app):
                    if proc is not None and proc.poll() is not None:
                        raise RuntimeError("%s: a container exited (%s) before ready:\n%s" % (
                            p.name, proc.returncode, self.h.log_of(proc)))
            pending = [p for p in pending if not p.ready()]
            if not pending:
                break
            if time.time() > end:
                raise TimeoutError("pods not ready after %ss: %s\n%s" % (
                    timeout, pending, "\n".join(self.h.log_of(p.sidecar) for p in pending)))
            time.sleep(0.1)
        for p in pods:
            self.event("%s ready" % p.name)

    def rolling_update(self, service, old_pods, new_version, max_surge=1, max_unavailable=0,
                       min_ready_seconds=0.5, ready_timeout=30, exit_timeout=30):
        """A Deployment's RollingUpdate: replaces old_pods with as many pods of new_version,
        keeping at most len(old)+max_surge pods and at least len(old)-max_unavailable ready ones.
        Each round starts what the surge allows, waits for readiness (/ready) plus
        min_ready_seconds (Kubernetes' minReadySeconds: the new endpoint reaches every client
        sidecar), then SIGTERMs what availability allows and waits for those pods to exit.
        Returns (new pods, exit codes of the old pods as (sidecar, app) tuples)."""
        desired = len(old_pods)
        if max_surge <= 0 and max_unavailable <= 0:
            raise ValueError("max_surge and max_unavailable cannot both be 0")
        old = list(old_pods)
        new = []
        codes = []
        while old or len(new) < desired:
            started = []
            while len(new) < desired and len(old) + len(new) < desired + max_surge:
                p = self.start_pod(service, new_version, wait_ready=False)
                new.append(p)
                started.append(p)
            if started:
                self.wait_ready(*started, timeout=ready_timeout)
                time.sleep(min_ready_seconds)
            available = len(old) + len(new)
            victims = []
            while old and available - 1 >= desired - max_unavailable:
                victims.append(old.pop(0))
                available -= 1
            if not started and not victims:
                raise RuntimeError("rolling update cannot progress (surge %d, unavailable %d)" % (
                    max_surge, max_unavailable))
            for v in victims:
                self.event("SIGTERM %s" % v.name)
                v.send_signal(signal.SIGTERM)
            for v in victims:
                c = v.wait_exit(exit_timeout)
                codes.append(c)
                self.event("%s exited %s" % (v.name, c))
        return new, codes
