"""tests/proxy/drain_bounce_test.py — the drain hand-off between sidecars (exchange.c, "bounce").

A draining server sidecar does not forward to its app (which Kubernetes signalled too, and which
may already be closing) what another sidecar marked bounceable: it answers 503
`x-remora-error: draining`, and the calling sidecar sends the request to another endpoint — or,
with no other endpoint left, to the same one marked as its last resort, which is then forwarded.
Real processes: test backends as apps, a remora-proxy in front of each (the server sidecars) and
one more as the client's sidecar.
"""
import json
import socket
import unittest

from proxy_fixture import ProxyHarness, get, metric, service_yaml
from remora_harness import http_request, read_response


def app_requests(app):
    return json.loads(http_request(app.port, "/__backend/stats").body)["requests"]


class DrainBounceTest(unittest.TestCase):
    def setUp(self):
        self.h = ProxyHarness()
        self.addCleanup(self.h.close)

    def server_sidecar(self, name):
        """An app and its sidecar; the sidecar's inbound port is what clients list."""
        app = self.h.backend("reviews", "v1", extra=["--instance", name])
        p = self.h.proxy(service_yaml("reviews", [("127.0.0.1:%d" % app.port, "v1")]),
                         extra=["--app-port", str(app.port), "--drain-grace", "5s",
                                "--drain-seconds", "10", "--workers", "1"],
                         name="server-" + name)
        return app, p

    def client_sidecar(self, servers):
        eps = [("127.0.0.1:%d" % p.inbound, "v1") for _, p in servers]
        return self.h.proxy(service_yaml("reviews", eps, sidecar=True), name="client")

    def test_draining_sidecar_sends_back_what_is_marked_bounceable(self):
        app, p = self.server_sidecar("a")
        self.assertEqual(http_request(p.admin, "/drain", method="POST").status, 200)
        before = app_requests(app)
        s = socket.create_connection(("127.0.0.1", p.inbound), timeout=5)
        s.sendall(b"POST /order HTTP/1.1\r\nHost: reviews\r\nx-remora-bounceable: 1\r\n"
                  b"content-length: 5\r\n\r\nhello")
        r, _ = read_response(s)
        s.close()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("x-remora-error"), "draining")
        self.assertEqual(app_requests(app), before, "a bounced request reached the app")
        # Without the mark (a client without a sidecar, or a last resort) it is forwarded.
        r = http_request(p.inbound, "/order", method="POST", body=b"hello",
                         headers={"Host": "reviews"})
        self.assertEqual(r.status, 200)
        self.assertEqual(app_requests(app), before + 1)

    def test_client_sidecar_sends_bounced_requests_to_another_endpoint(self):
        a_app, a = self.server_sidecar("a")
        b_app, b = self.server_sidecar("b")
        client = self.client_sidecar([(a_app, a), (b_app, b)])
        for _ in range(10):  # both endpoints in use before the drain
            self.assertEqual(get(client.outbound, "/", host="reviews").status, 200)
        self.assertEqual(http_request(a.admin, "/drain", method="POST").status, 200)
        a_before, b_before = app_requests(a_app), app_requests(b_app)
        for i in range(40):
            r = get(client.outbound, "/order", host="reviews", method="POST",
                    body=b"order=%d" % i)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["instance"], "b")
        self.assertEqual(app_requests(a_app), a_before, "the draining pod's app got requests")
        self.assertEqual(app_requests(b_app), b_before + 40)
        # A bounce is a redirect, not a retry: no retry was counted for it.
        self.assertEqual(metric(client.admin, "remora_retries_total"), 0)
        self.assertGreater(metric(client.admin, "remora_drain_redirects_total", service="reviews"), 0)

    def test_last_resort_is_forwarded(self):
        app, p = self.server_sidecar("a")
        client = self.client_sidecar([(app, p)])
        self.assertEqual(get(client.outbound, "/", host="reviews").status, 200)
        self.assertEqual(http_request(p.admin, "/drain", method="POST").status, 200)
        before = app_requests(app)
        r = get(client.outbound, "/order", host="reviews", method="POST", body=b"order=1")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(app_requests(app), before + 1)


if __name__ == "__main__":
    unittest.main()
