#!/usr/bin/env python3
"""tests/fuzz/discovery/make_corpus.py — writes the seed corpus of discovery_fuzz: discovery
sessions (Hello, ACK, NACK, withdraw, register, stats, stream ends) and one input per Admin
method, in the driver's input format (see discovery_fuzz.c).

Run from the repo root after `bazel build //proto:remora_v1_py_gen`:
    /usr/bin/python3 tests/fuzz/discovery/make_corpus.py
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "bazel-bin", "proto"))
from remora.v1 import admin_pb2, discovery_pb2, stats_pb2  # noqa: E402

OUT = os.path.join(HERE, "corpus")

ADMIN = ["Apply", "Get", "Delete", "History", "Rollback", "Stats", "ProxyStatus", "WaitForAck"]


def rec(msg, sidecar=0, close=False, later=False, admin=False):
    data = msg if isinstance(msg, bytes) else msg.SerializeToString()
    flags = sidecar | (4 if close else 0) | (8 if later else 0) | (16 if admin else 0)
    return bytes([flags]) + struct.pack("<H", len(data)) + data


def hello(pod, service="", version="", address="", last=0):
    return discovery_pb2.DiscoveryRequest(hello=discovery_pb2.Hello(
        node=discovery_pb2.Node(pod=pod, namespace="default", service=service, version=version,
                                address=address, proxy_version="0.1.0"),
        last_config_version=last))


def ack(nonce, version=1):
    return discovery_pb2.DiscoveryRequest(ack=discovery_pb2.Ack(version=version, nonce=nonce))


def nack(nonce, error="rules[0].destinations: bad"):
    return discovery_pb2.DiscoveryRequest(nack=discovery_pb2.Nack(version=1, nonce=nonce,
                                                                  error=error))


def endpoint(kind):
    return discovery_pb2.DiscoveryRequest(endpoint=discovery_pb2.EndpointChange(kind=kind))


def stats():
    c = stats_pb2.Counter
    rep = stats_pb2.StatsReport(timestamp_ms=5, counters=[
        c(name="remora_requests_total", value=90, labels={"service": "reviews", "version": "v1",
                                                         "route": "reviews-rollout",
                                                         "code": "200"}),
        c(name="remora_requests_total", value=3, labels={"service": "reviews", "version": "v2",
                                                        "route": "reviews-rollout",
                                                        "code": "503"}),
        c(name="remora_retries_total", value=4, labels={"service": "reviews", "version": "v2",
                                                       "reason": "gateway-error"}),
        c(name="remora_retries_skipped_total", value=1, labels={"reason": "budget"}),
    ], histograms=[stats_pb2.Histogram(
        name="remora_request_duration_seconds",
        labels={"service": "reviews", "version": "v1", "route": "reviews-rollout"},
        bounds=[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        counts=[0, 0, 10, 50, 80, 90, 90, 90, 90, 90, 90, 90, 90, 90, 90], count=90, sum=1.2)])
    return discovery_pb2.DiscoveryRequest(stats=rep)


# Our nonces are "<16 hex>-<gen>"; the fuzzer cannot know the boot id, so ACK/NACK seeds carry a
# plausible shape and the dictionary helps it with the rest.
def sessions():
    yield "session_hello", rec(hello("a-1"))
    yield "session_register_withdraw", (
        rec(hello("r-1", "reviews", "v2", "10.0.0.2:15006")) +
        rec(endpoint(discovery_pb2.EndpointChange.WITHDRAW)) +
        rec(endpoint(discovery_pb2.EndpointChange.REGISTER), admin=True))
    yield "session_two_sidecars", (
        rec(hello("a", "reviews", "v1", "10.0.0.1:1"), 0) +
        rec(hello("b", "ratings", "v1", "[::1]:8080"), 1) +
        rec(ack("0000000000000000-1"), 0) + rec(nack("0000000000000000-1"), 1, admin=True) +
        rec(b"", 0, close=True, later=True))
    yield "session_stats", rec(hello("s", last=1)) + rec(stats(), admin=True) + \
        rec(stats(), later=True, admin=True)
    yield "session_grace", (
        rec(hello("g", "reviews", "v3", "10.0.0.3:1"), close=True) +
        rec(hello("g", "reviews", "v3", "10.0.0.3:1"), 1, later=True, admin=True))
    yield "session_no_hello", rec(ack("x"))
    yield "session_bad_hello", rec(hello("bad pod", "s", "v", "nocolon"))
    yield "session_garbage", rec(b"\xff\xff\xff\x0f")


def admin_inputs():
    src = open(os.path.join(HERE, "seed_apply.yaml")).read()
    reqs = {
        "Apply": [admin_pb2.ApplyRequest(source=src, filename="a.yaml"),
                  admin_pb2.ApplyRequest(source=src.replace("weight: 10", "weight: x"),
                                         filename="bad.yaml"),
                  admin_pb2.ApplyRequest(source='[{"kind": "Service", "name": "web", '
                                                '"port": 80}]', filename="w.json",
                                         wait=True),
                  admin_pb2.ApplyRequest(source=src, dry_run=True)],
        "Get": [admin_pb2.GetRequest(kind="routes"), admin_pb2.GetRequest(name="reviews"),
                admin_pb2.GetRequest(version=1)],
        "Delete": [admin_pb2.DeleteRequest(kind="route", name="reviews-rollout"),
                   admin_pb2.DeleteRequest(kind="service", name="reviews")],
        "History": [admin_pb2.HistoryRequest(limit=3)],
        "Rollback": [admin_pb2.RollbackRequest(), admin_pb2.RollbackRequest(to_version=1)],
        "Stats": [admin_pb2.StatsRequest(service="reviews")],
        "ProxyStatus": [admin_pb2.ProxyStatusRequest()],
        "WaitForAck": [admin_pb2.WaitForAckRequest(version=1)],
    }
    for i, m in enumerate(ADMIN):
        for j, r in enumerate(reqs[m]):
            yield "admin_%s_%d" % (m.lower(), j), bytes([128 + i]) + r.SerializeToString()


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sessions():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b"\x00" + data)
    for name, data in admin_inputs():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
