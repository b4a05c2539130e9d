"""tests/proxy/proxy_fixture.py — start remora-proxy with a config for process-level tests."""
import os
import signal
import socket
import time

from remora_harness import Harness, free_port, http_request, runfile, wait_port


class ProxyHarness(Harness):
    """A Harness that also starts remora-proxy instances."""

    def proxy(self, config_text, extra=(), name="proxy"):
        cfg = self.write("%s-%d.yaml" % (name, len(self.procs)), config_text)
        ports = dict(outbound=free_port(), inbound=free_port(), admin=free_port())
        argv = [runfile("dataplane/proxy/remora-proxy"), "--config", cfg, "--bind", "127.0.0.1",
                "--outbound-port", str(ports["outbound"]), "--inbound-port", str(ports["inbound"]),
                "--admin-port", str(ports["admin"]), "--log-level", "debug"] + list(extra)
        p = self.start(argv, log_name=name)
        for port in ports.values():
            wait_port(port, proc=p)
        p.outbound = ports["outbound"]
        p.inbound = ports["inbound"]
        p.admin = ports["admin"]
        p.config_path = cfg
        return p


def service_yaml(name, endpoints, port=80, extra="", sidecar=False):
    """A Service document; endpoints is a list of (address, version). sidecar: the endpoints are
    Remora sidecars' inbound ports (the mesh's own headers go to them, and are acted on)."""
    mark = ", sidecar: true" if sidecar else ""
    eps = "".join("  - {address: %s, version: %s%s}\n" % (a, v, mark) for a, v in endpoints)
    return "kind: Service\nname: %s\nport: %d\n%sendpoints:\n%s" % (name, port, extra, eps)


def get(port, path="/", host="svc", headers=None, **kw):
    h = {"Host": host}
    h.update(headers or {})
    return http_request(port, path, headers=h, **kw)


def stats_text(admin_port):
    return http_request(admin_port, "/stats").body.decode()


def metric(admin_port, name, **labels):
    """Sum of a Prometheus series' values whose labels include `labels`."""
    total = 0.0
    for line in stats_text(admin_port).splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % (k, v) in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
