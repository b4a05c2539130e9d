"""tests/injector/certreload_test.py — replacing the certificate files (as a renewed Kubernetes
secret does) makes new connections see the new certificate without a restart; a connection open
across the swap keeps working; a broken pair is refused and the old one stays in force."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from injector_fixture import Injector, admission_review, decode_patch, gen_certs


def pod():
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


class CertReloadTest(unittest.TestCase):
    def setUp(self):
        self.inj = Injector()

    def tearDown(self):
        self.inj.close()

    def peer_cert(self):
        # Unverified on purpose: mid-swap the CA file may already be newer than the served cert.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.inj.port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                return s.getpeercert(binary_form=True)

    def wait_for_cert(self, want, not_equal=False, limit=20.0):
        """Polls new connections until the served certificate is (or is no longer) want."""
        deadline = time.time() + limit
        while time.time() < deadline:
            got = self.peer_cert()
            if (got != want) if not_equal else (got == want):
                return got
            time.sleep(0.2)
        self.fail("served certificate did not change within %.0fs; log:\n%s"
                  % (limit, self.inj.logs()))

    def test_replaced_files_are_served_to_new_connections(self):
        old = self.peer_cert()
        held = self.inj.tls_socket()  # open across the swap
        gen_certs(self.inj.certs)  # reuses the CA, new key and serial, renamed into place
        new = self.wait_for_cert(old, not_equal=True)
        with open(os.path.join(self.inj.certs, "tls.crt")) as f:
            self.assertEqual(new, ssl.PEM_cert_to_DER_cert(f.read()))
        # New connections verify against the same CA and get patches.
        status, resp = self.inj.review(admission_review(pod()))
        self.assertEqual(status, 200)
        self.assertIsNotNone(decode_patch(resp))
        # The connection opened before the swap still works.
        status, _, body = self.inj.request("POST", "/inject",
                                           json.dumps(admission_review(pod())).encode(),
                                           sock=held)
        held.close()
        self.assertEqual(status, 200)
        self.assertIn("reloaded certificate", self.inj.logs())

    def test_new_ca_after_swap(self):
        # A whole new CA (as cert-manager rotating its issuer would do).
        other = tempfile.mkdtemp(prefix="remora-other-ca-")
        try:
            gen_certs(other)
            old = self.peer_cert()
            for name in ("tls.key", "tls.crt", "ca.crt"):
                shutil.copy(os.path.join(other, name), os.path.join(self.inj.certs, name + ".tmp"))
                os.replace(os.path.join(self.inj.certs, name + ".tmp"),
                           os.path.join(self.inj.certs, name))
            self.wait_for_cert(old, not_equal=True)
            status, _ = self.inj.review(admission_review(pod()))  # verifies with the new CA
            self.assertEqual(status, 200)
        finally:
            shutil.rmtree(other)

    def test_mismatched_pair_keeps_old_certificate(self):
        old = self.peer_cert()
        key = os.path.join(self.inj.certs, "tls.key")
        subprocess.run(["openssl", "genrsa", "-out", key + ".tmp", "2048"], check=True,
                       capture_output=True)
        os.replace(key + ".tmp", key)  # a key that does not match tls.crt
        deadline = time.time() + 20
        while "do not load" not in self.inj.logs() and time.time() < deadline:
            time.sleep(0.2)
        self.assertIn("do not load", self.inj.logs())
        self.assertEqual(self.peer_cert(), old)
        status, _ = self.inj.review(admission_review(pod()))
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
