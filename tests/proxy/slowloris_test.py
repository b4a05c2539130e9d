"""tests/proxy/slowloris_test.py — slow clients (slowhttptest's slow headers and slow body) hold
connections open, yet normal clients keep being served promptly, and the slow ones are cut off
by the header timeout."""
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

from proxy_fixture import ProxyHarness, get, service_yaml


@unittest.skipUnless(shutil.which("slowhttptest"), "needs slowhttptest")
class SlowlorisTest(unittest.TestCase):
    def test_slow_clients_do_not_starve_normal_ones(self):
        with ProxyHarness() as h:
            b = h.backend("svc", "v1")
            p = h.proxy(service_yaml("svc", [("127.0.0.1:%d" % b.port, "v1")]),
                        extra=["--header-timeout", "2s", "--log-level", "warn"])
            attack = h.start(["slowhttptest", "-H", "-c", "800", "-r", "400", "-i", "1", "-l", "8",
                              "-x", "8", "-p", "2", "-u", "http://127.0.0.1:%d/" % p.outbound],
                             log_name="slowhttptest")
            time.sleep(2.5)  # the attack's connections are open and trickling
            latencies, failures = [], 0
            end = time.time() + 4
            while time.time() < end:
                t = time.time()
                try:
                    r = get(p.outbound, "/", host="svc", timeout=3)
                    if r.status != 200:
                        failures += 1
                except OSError:
                    failures += 1
                latencies.append(time.time() - t)
                time.sleep(0.02)
            attack.wait(timeout=30)
            log = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", h.log_of(attack))
            self.assertEqual(failures, 0, "normal requests failed during the attack")
            latencies.sort()
            self.assertLess(latencies[len(latencies) * 99 // 100], 1.0, "normal requests starved")
            # the slow connections were closed by the proxy (header timeout), not left to pile up:
            # slowhttptest stops early when none of its connections is left open
            self.assertIn("No open connections left", log, log[-1500:])


if __name__ == "__main__":
    unittest.main()
