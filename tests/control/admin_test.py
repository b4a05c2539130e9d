"""tests/control/admin_test.py — the Admin API of a real remora-control over gRPC: apply
(created/unchanged/rejected, all-or-nothing), get, delete, history, rollback, bad wire input, and
a restart on the same store."""
import unittest

# control_fixture first: it makes sure the python3 running us has grpc.
from control_fixture import (SERVICES, Control, Harness, admin_pb2, config_pb2, grpc, route,
                             rpc_error)


class AdminTest(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.c = Control(self.h)

    def tearDown(self):
        self.h.close()

    def test_apply_creates_version_then_unchanged(self):
        r = self.c.apply(SERVICES + "---\n" + route(), filename="mesh.yaml")
        self.assertEqual(r.version, 1)
        self.assertEqual(sorted((c.kind, c.name, c.change) for c in r.changes),
                         [("Route", "reviews-rollout", "created"),
                          ("Service", "ratings", "created"),
                          ("Service", "reviews", "created")])
        # v2 has weight but no endpoint: a warning naming file, line and column.
        self.assertTrue(any(w.startswith("mesh.yaml:") and "v2" in w for w in r.warnings),
                        r.warnings)

        again = self.c.apply(SERVICES + "---\n" + route(), filename="mesh.yaml")
        self.assertEqual(again.version, 1)
        self.assertEqual({c.change for c in again.changes}, {"unchanged"})
        self.assertEqual(len(self.c.history().entries), 1)

        upd = self.c.apply(route(50, 50))
        self.assertEqual(upd.version, 2)
        self.assertEqual([(c.name, c.change) for c in upd.changes],
                         [("reviews-rollout", "updated")])
        # The services applied earlier are still there: an apply adds or replaces documents.
        got = self.c.get()
        self.assertEqual(got.version, 2)
        self.assertEqual(sorted(s.name for s in got.config.services), ["ratings", "reviews"])
        self.assertEqual([d.weight for d in got.config.routes[0].rules[0].destinations], [50, 50])

    def test_invalid_apply_is_rejected_with_positions_and_nothing_stored(self):
        self.c.apply(SERVICES)
        bad = route().replace("weight: 10", "weight: ten")
        e = rpc_error(self.c.apply, bad, filename="bad.yaml")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        first = e.details().splitlines()[0]
        self.assertRegex(first, r"^bad\.yaml:\d+:\d+: rules\[0\]\.destinations\[1\]\.weight: ")
        self.assertEqual(len(self.c.history().entries), 1)
        self.assertEqual(len(self.c.get().config.routes), 0)

    def test_every_error_line_is_reported(self):
        bad = ("kind: Route\nname: a\nservice: nosuch\nrules: [{destinations: [{version: v1, "
               "weight: 1}]}]\n---\nkind: Route\nname: b\nservice: alsonot\n"
               "rules: [{destinations: [{version: v1, weight: 1}]}]\n")
        e = rpc_error(self.c.apply, bad, filename="two.yaml")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        lines = e.details().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith("two.yaml:3:"), lines)
        self.assertIn("nosuch", lines[0])
        self.assertTrue(lines[1].startswith("two.yaml:8:"), lines)

    def test_one_invalid_document_among_many_applies_nothing(self):
        docs = SERVICES + "---\n" + route() + "---\nkind: CircuitBreaker\nname: cb\n" \
               "service: reviews\nlimits: {maxConnections: -5}\n"
        e = rpc_error(self.c.apply, docs, filename="many.yaml")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("many.yaml:", e.details())
        self.assertEqual(len(self.c.history().entries), 0)
        got = self.c.get()
        self.assertEqual(got.version, 0)
        self.assertEqual(len(got.config.services) + len(got.config.routes), 0)

    def test_union_is_validated(self):
        # A Route referring to a Service stored earlier is valid...
        self.c.apply(SERVICES)
        self.assertEqual(self.c.apply(route()).version, 2)
        # ... and one referring to a service that exists nowhere is not.
        e = rpc_error(self.c.apply, route().replace("service: reviews", "service: nope"))
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("nope", e.details())

    def test_dry_run_changes_nothing(self):
        r = self.c.apply(SERVICES, dry_run=True)
        self.assertEqual(r.version, 0)
        self.assertEqual({c.change for c in r.changes}, {"created"})
        self.assertEqual(len(self.c.history().entries), 0)

    def test_get_filters(self):
        self.c.apply(SERVICES + "---\n" + route())
        self.assertEqual([s.name for s in self.c.get(kind="services", name="ratings")
                          .config.services], ["ratings"])
        self.assertEqual(len(self.c.get(kind="routes").config.services), 0)
        self.assertEqual(len(self.c.get(kind="routes").config.routes), 1)
        e = rpc_error(self.c.get, kind="routes", name="missing")
        self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
        e = rpc_error(self.c.get, kind="gateways")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        e = rpc_error(self.c.get, version=99)
        self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
        # Defaults are filled in what is stored: namespace, timeout.
        r = self.c.get(kind="routes").config.routes[0]
        self.assertEqual(r.namespace, "default")
        self.assertEqual(r.rules[0].timeout.millis, 15000)

    def test_delete(self):
        self.c.apply(SERVICES + "---\n" + route())
        # The route still needs its service: refused, nothing changes.
        e = rpc_error(self.c.delete, "service", "reviews")
        self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("reviews", e.details())
        e = rpc_error(self.c.delete, "route", "nope")
        self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
        e = rpc_error(self.c.delete, "widget", "x")
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.c.delete("route", "reviews-rollout").version, 2)
        self.assertEqual(self.c.delete("services", "reviews").version, 3)
        got = self.c.get()
        self.assertEqual([s.name for s in got.config.services], ["ratings"])
        self.assertEqual(len(got.config.routes), 0)
        self.assertIn("delete route default/reviews-rollout", self.c.history().entries[1].summary)

    def test_history_and_rollback(self):
        self.c.apply(SERVICES)
        self.c.apply(route(90, 10))
        self.c.apply(route(50, 50))
        h = self.c.history()
        self.assertEqual([e.version for e in h.entries], [3, 2, 1])
        self.assertTrue(all(e.created_ms > 0 for e in h.entries))
        self.assertIn("route default/reviews-rollout updated", h.entries[0].summary)
        self.assertEqual([e.version for e in self.c.history(limit=2).entries], [3, 2])

        rb = self.c.rollback()  # to the previous version
        self.assertEqual((rb.version, rb.restored_from), (4, 3 - 1))
        self.assertEqual([d.weight for d in self.c.get().config.routes[0].rules[0].destinations],
                         [90, 10])
        rb = self.c.rollback(to_version=1)
        self.assertEqual((rb.version, rb.restored_from), (5, 1))
        self.assertEqual(len(self.c.get().config.routes), 0)
        self.assertIn("rollback to version 1", self.c.history().entries[0].summary)
        # A version equal to an older one: Get of that old version still answers.
        self.assertEqual(len(self.c.get(version=3).config.routes), 1)

        self.assertEqual(rpc_error(self.c.rollback, to_version=5).code(),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(rpc_error(self.c.rollback, to_version=77).code(),
                         grpc.StatusCode.INVALID_ARGUMENT)

    def test_rollback_without_history(self):
        self.assertEqual(rpc_error(self.c.rollback).code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.c.apply(SERVICES)
        self.assertEqual(rpc_error(self.c.rollback).code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_malformed_protobuf_is_invalid_argument(self):
        for data in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x08"):
            e = rpc_error(self.c.raw_call, "/remora.v1.Admin/Apply", data)
            self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT, data)
            self.assertIn("malformed", e.details())
        self.assertEqual(len(self.c.history().entries), 0)

    def test_oversized_message_is_resource_exhausted(self):
        big = admin_pb2.ApplyRequest(source="#" * (5 * 1024 * 1024), filename="big.yaml")
        e = rpc_error(self.c.call, "Apply", big, admin_pb2.ApplyResponse)
        self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The server is unharmed.
        self.assertEqual(self.c.apply(SERVICES).version, 1)

    def test_unknown_method_is_unimplemented(self):
        e = rpc_error(self.c.raw_call, "/remora.v1.Admin/Explode", b"")
        self.assertEqual(e.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_restart_keeps_history_and_config(self):
        self.c.apply(SERVICES)
        self.c.apply(route())
        before = self.c.get()
        self.c.restart()
        after = self.c.get()
        self.assertEqual(after.version, 2)
        self.assertEqual(after.config.SerializeToString(), before.config.SerializeToString())
        self.assertEqual([e.version for e in self.c.history().entries], [2, 1])
        # Versions continue from the store, and the same documents are still "unchanged".
        self.assertEqual({c.change for c in self.c.apply(route()).changes}, {"unchanged"})
        self.assertEqual(self.c.apply(route(1, 1)).version, 3)

    def test_json_documents(self):
        doc = '[{"kind": "Service", "name": "web", "port": 80}]'
        r = self.c.apply(doc, filename="web.json")
        self.assertEqual(r.version, 1)
        svc = self.c.get(kind="services", name="web").config.services[0]
        self.assertEqual((svc.name, svc.port), ("web", 80))
        self.assertIsInstance(svc, config_pb2.Service)


if __name__ == "__main__":
    unittest.main()
