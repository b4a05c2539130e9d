"""tests/injector/injector_fixture.py — starts the real remora-injector over TLS for tests.

Certificates come from deploy/gen-certs.sh (the openssl CLI), with localhost/127.0.0.1 added to the
serving certificate, so the tests check the same script users run. Requests go over TLS with the
standard library's ssl module, verified against the generated CA. Also: building AdmissionReviews,
decoding the base64 JSONPatch and a tiny RFC 6902 "add" applier (written here, independently of
the C one) to check the resulting pod.
"""
import base64
import copy
import json
import os
import socket
import ssl
import subprocess
import tempfile
import uuid

from remora_harness import free_port, runfile, wait_port


def gen_certs(out_dir):
    script = runfile("deploy/gen-certs.sh")
    subprocess.run(["bash", script, "--out", out_dir, "--extra-san", "DNS:localhost",
                    "--extra-san", "IP:127.0.0.1"], check=True, capture_output=True)


class Injector:
    """A running remora-injector on a free loopback port; close() kills it."""

    def __init__(self, *extra_args):
        self.tmp = tempfile.TemporaryDirectory(prefix="remora-injector-")
        self.certs = os.path.join(self.tmp.name, "certs")
        gen_certs(self.certs)
        self.port = free_port()
        self.log = open(os.path.join(self.tmp.name, "injector.log"), "w+")
        self.proc = subprocess.Popen(
            [runfile("injector/remora-injector"), "--cert", os.path.join(self.certs, "tls.crt"),
             "--key", os.path.join(self.certs, "tls.key"), "--listen", "127.0.0.1:%d" % self.port,
             *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)

    def close(self):
        """Stops the injector with SIGTERM; it must exit 0 (under ASan that includes no leaks)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, logs = self.proc.returncode, self.logs()
        self.log.close()
        self.tmp.cleanup()
        if rc != 0:
            raise AssertionError("remora-injector exited with %s; log:\n%s" % (rc, logs[-4000:]))

    def logs(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def context(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.crt"))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def tls_socket(self, timeout=10.0):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return self.context().wrap_socket(raw, server_hostname="localhost")

    def request(self, method, path, body=b"", headers=None, sock=None):
        """One HTTP/1.1 request over TLS; returns (status, headers dict, body bytes)."""
        own = sock is None
        if own:
            sock = self.tls_socket()
        try:
            hdrs = {"Host": "remora-injector.remora-system.svc:443",
                    "Content-Type": "application/json"}
            if method == "POST" or body:
                hdrs["Content-Length"] = str(len(body))
            hdrs.update(headers or {})
            head = "%s %s HTTP/1.1\r\n" % (method, path)
            head += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs.items() if v is not None)
            sock.sendall(head.encode() + b"\r\n" + body)
            return read_response(sock)
        finally:
            if own:
                sock.close()

    def review(self, review_obj):
        """POSTs an AdmissionReview; returns (status, parsed JSON or text)."""
        status, _, body = self.request("POST", "/inject?timeout=10s",
                                       json.dumps(review_obj).encode())
        if status == 200:
            return status, json.loads(body)
        return status, body.decode()


def read_response(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before response head: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside body")
        rest += chunk
    return status, headers, rest[:n]


def admission_review(obj, kind="Pod", operation="CREATE", group="", uid=None):
    uid = uid or str(uuid.uuid4())
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"},
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def decode_patch(response):
    """The JSONPatch list of an AdmissionReview response, or None when it has none."""
    r = response["response"]
    if "patch" not in r:
        return None
    assert r["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(r["patch"]))


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def apply_patch(doc, patch):
    """RFC 6902 "add" only (the injector must never emit anything else); returns a new doc."""
    doc = copy.deepcopy(doc)
    for op in patch:
        assert op["op"] == "add", "injector emitted a non-add operation: %r" % op
        tokens = [_unescape(t) for t in op["path"].split("/")[1:]]
        parent = doc
        for t in tokens[:-1]:
            parent = parent[int(t)] if isinstance(parent, list) else parent[t]
        last = tokens[-1]
        if isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(op["value"]))
            else:
                idx = int(last)
                assert 0 <= idx <= len(parent), "index out of range in %r" % op
                parent.insert(idx, copy.deepcopy(op["value"]))
        else:
            parent[last] = copy.deepcopy(op["value"])
    return doc


def container(pod, name, init=False):
    for c in pod["spec"].get("initContainers" if init else "containers", []):
        if c["name"] == name:
            return c
    return None


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args else None
