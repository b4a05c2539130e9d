"""tests/e2e/mesh_fixture.py — a small mesh on loopback: remora-control, "pods" (a test backend
plus its remora-proxy sidecar registered through the control plane), client sidecars, and a
fixed-rate load generator that records every failure the client sees."""
import signal
import time

from control_fixture import Control  # re-execs under /usr/bin/python3 for grpc when needed
from remora_harness import Harness, Load, free_port, http_request, runfile, wait_port  # noqa: F401


class Pod:
    def __init__(self, mesh, service, version, name):
        h = mesh.h
        self.name = name
        self.app = h.backend(service, version, extra=["--drain-seconds", "5"])
        self.inbound, self.admin = free_port(), free_port()
        self.sidecar = h.start([runfile("dataplane/proxy/remora-proxy"), "--control-plane",
                                mesh.control.target, "--bind", "127.0.0.1", "--service", service,
                                "--version", version, "--pod", name, "--app-port",
                                str(self.app.port), "--outbound-port", "0", "--inbound-port",
                                str(self.inbound), "--admin-port", str(self.admin),
                                "--drain-grace", "1s", "--drain-seconds", "10"],
                               log_name="sidecar-" + name)
        wait_port(self.admin, proc=self.sidecar)

    def ready(self):
        try:
            return http_request(self.admin, "/ready", timeout=2).status == 200
        except OSError:
            return False

    def terminate(self, sig=signal.SIGTERM):
        """What the kubelet does to a pod with classic containers: both get the signal at once."""
        self.sidecar.send_signal(sig)
        self.app.send_signal(sig)

    def wait_exit(self, timeout=15):
        return self.sidecar.wait(timeout=timeout), self.app.wait(timeout=timeout)


class Mesh:
    def __init__(self):
        self.h = Harness()
        self.control = Control(self.h)
        self.pods = {}

    def close(self):
        self.h.close()

    def pod(self, service, version, name):
        p = Pod(self, service, version, name)
        self.pods[name] = p
        return p

    def client_sidecar(self, name="client"):
        out, admin = free_port(), free_port()
        proc = self.h.start([runfile("dataplane/proxy/remora-proxy"), "--control-plane",
                             self.control.target, "--bind", "127.0.0.1", "--pod", name,
                             "--outbound-port", str(out), "--inbound-port", "0", "--admin-port",
                             str(admin)], log_name="sidecar-" + name)
        wait_port(out, proc=proc)
        proc.outbound, proc.admin = out, admin
        return proc

    def wait_ready(self, *pods, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if all(p.ready() for p in pods):
                return
            time.sleep(0.05)
        raise TimeoutError("pods not ready: %s" % [p.name for p in pods if not p.ready()])
