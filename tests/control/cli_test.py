"""tests/control/cli_test.py — remora-control's command line: --help, --version, one clear line
and exit 2 for every bad flag, the default store location, and a clean exit on SIGTERM/SIGINT
with streams and parked calls open."""
import os
import signal
import socket
import subprocess
import unittest

from control_fixture import (BINARY, SERVICES, Control, Harness, admin_pb2, free_port, grpc,
                             runfile, wait_port)


def run(*args, cwd=None):
    p = subprocess.run([runfile(BINARY)] + list(args), capture_output=True, text=True,
                       timeout=30, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


class CliTest(unittest.TestCase):
    def test_help_and_version(self):
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        for flag in ("--listen", "--store", "--endpoint-grace", "--restore-grace", "--debounce",
                     "--history", "--max-streams", "--max-scopes", "--max-registrations",
                     "--max-waiters", "--log-level"):
            self.assertIn(flag, out)
        rc, out, _ = run("--version")
        self.assertEqual(rc, 0)
        self.assertTrue(out.startswith("remora-control "), out)

    def test_bad_flags_exit_2_with_one_line(self):
        cases = [
            (["--bogus"], "--bogus"),
            (["--listen"], "--listen"),
            (["--listen", "nocolon"], "nocolon"),
            (["--listen", "127.0.0.1:99999"], "99999"),
            (["--store", "/some/path.db"], "sqlite:PATH"),
            (["--store", "sqlite:"], "path"),
            (["--store", "etcd://nohostport"], "etcd://HOST:PORT"),
            (["--endpoint-grace", "2"], "--endpoint-grace"),
            (["--restore-grace", "soon"], "--restore-grace"),
            (["--restore-grace", "30"], "--restore-grace"),
            (["--restore-grace", "-5s"], "--restore-grace"),
            (["--restore-grace", "2h"], "at most"),
            (["--restore-grace"], "--restore-grace"),
            (["--debounce", "fast"], "--debounce"),
            (["--debounce", "2h"], "at most"),
            (["--history", "0"], "--history \"0\": a whole number from 1 to"),
            (["--history", "ten"], "--history"),
            (["--history", "-3"], "--history"),
            (["--history", "99999999999999999999999"], "--history"),
            (["--history"], "--history"),
            (["--max-streams", "0"], "--max-streams"),
            (["--max-scopes", "1k"], "--max-scopes"),
            (["--max-registrations", "2000000"], "--max-registrations"),
            (["--max-waiters", ""], "--max-waiters"),
            (["--log-level", "loud"], "loud"),
            (["stray"], "stray"),
        ]
        for args, needle in cases:
            rc, out, err = run(*args)
            self.assertEqual(rc, 2, (args, err))
            lines = err.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, err))
            self.assertIn(needle, lines[0], args)
            self.assertTrue(lines[0].startswith("remora-control: "), lines[0])

    def test_values_in_force_are_logged(self):
        # The value reaches the control plane (its start-up line says which restore grace it
        # uses), and one below --endpoint-grace is raised to it, as the core does.
        for args, want in ((["--restore-grace", "45s"], "restore grace 45000ms"),
                           (["--restore-grace", "0s", "--endpoint-grace", "3s"],
                            "restore grace 3000ms"),
                           ([], "restore grace 30000ms"),
                           ([], "keeping 100 versions"),
                           (["--history", "7"], "keeping 7 versions"),
                           ([], "at most 10000 streams, 1000 scopes, 20000 registrations, "
                                "100 waiters"),
                           (["--max-streams", "5", "--max-scopes", "6", "--max-registrations",
                             "7", "--max-waiters", "8"],
                            "at most 5 streams, 6 scopes, 7 registrations, 8 waiters")):
            with Harness() as h:
                port = free_port()
                p = h.start([runfile(BINARY), "--listen", "127.0.0.1:%d" % port, "--store",
                             "sqlite:" + h.path("x.db")] + args)
                wait_port(port, proc=p)
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=20), 0)
                self.assertIn(want, h.log_of(p), args)

    def test_default_store_is_remora_data(self):
        with Harness() as h:
            port = free_port()
            p = h.start([runfile(BINARY), "--listen", "127.0.0.1:%d" % port], cwd=h.tmp)
            wait_port(port, proc=p)
            ch = grpc.insecure_channel("127.0.0.1:%d" % port)
            apply = ch.unary_unary("/remora.v1.Admin/Apply",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=admin_pb2.ApplyResponse.FromString)
            self.assertEqual(apply(admin_pb2.ApplyRequest(source=SERVICES), timeout=10).version, 1)
            ch.close()
            self.assertTrue(os.path.exists(os.path.join(h.tmp, "remora-data", "remora.db")))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=20), 0)

    def test_port_in_use_fails_clearly(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            with Harness() as h:
                rc, _, err = run("--listen", "127.0.0.1:%d" % port, "--store",
                                 "sqlite:" + h.path("x.db"))
        self.assertEqual(rc, 1)
        self.assertIn("cannot listen", err)

    def test_clean_shutdown_with_open_calls(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with Harness() as h:
                c = Control(h)
                c.apply(SERVICES)
                streams = [c.sidecar(pod="p%d" % i, service="reviews", version="v1",
                                     address="10.0.0.%d:1" % (i + 1)) for i in range(5)]
                for s in streams:
                    s.next_snapshot()
                req = admin_pb2.WaitForAckRequest(version=1)
                req.timeout.millis = 600000
                f = c.channel.unary_unary("/remora.v1.Admin/WaitForAck",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=
                                          admin_pb2.WaitForAckResponse.FromString)
                parked = f.future(req, timeout=600)
                self.assertFalse(parked.done())
                c.proc.send_signal(sig)
                self.assertEqual(c.proc.wait(timeout=20), 0, c.log())
                for s in streams:
                    self.assertIsNotNone(s.wait_ended())
                with self.assertRaises(grpc.RpcError):
                    parked.result(timeout=20)
                self.assertIn("shutting down", c.log())
                self.assertIn("stopped", c.log())


if __name__ == "__main__":
    unittest.main()
