"""tests/fuzz/etcd/make_corpus.py — writes the seed corpus of etcd_fuzz: a Range reply with two
config records, one with endpoint registrations, a Watch reply that creates the watch, one with
PUT events, one cancelled, raw records, LeaseGrant and LeaseKeepAlive replies (live and
expired), raw registration values, and Txn replies (a failed append's range, a conditional
delete's delete-range). The protobuf wire format is written by hand (no generated modules
needed)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def record(created, summary, config=b""):
    s = summary.encode()
    return b"RMV1" + struct.pack(">QI", created, len(s)) + s + config


def key(kind, v):
    return ("/remora/v1/%s/%020d" % (kind, v)).encode()


def kv(k, v, rev=5):
    return field(1, k) + field(2, rev) + field(3, rev) + field(4, 1) + field(5, v)


header = field(1, 12345) + field(2, 1) + field(3, 9) + field(4, 2)
seeds = {
    "range_two": b"\x00" + field(1, header) +
    field(2, kv(key("versions", 2), record(1700000000000, "apply a.yaml: route r updated",
                                            b"\x0a\x05\x0a\x03svc"))) +
    field(2, kv(key("history", 1), record(1700000000000, "apply b.yaml"))) + field(4, 2),
    "range_empty": b"\x00" + field(1, header),
    "watch_created": b"\x01" + field(1, header) + field(2, 0) + field(3, 1),
    "watch_events": b"\x01" + field(1, header) +
    field(11, field(1, 0) + field(2, kv(key("history", 7), record(1, "x")))) +
    field(11, field(1, 1) + field(2, kv(key("history", 8), b""))),
    "watch_canceled": b"\x01" + field(1, header) + field(4, 1) + field(5, 3) +
    field(6, b"mvcc: required revision has been compacted"),
}
k = key("versions", 42)
seeds["raw_record"] = b"\x02" + bytes([len(k)]) + k + record(9, "hi", b"CFG")
seeds["raw_cut"] = b"\x02" + bytes([len(k)]) + k + record(9, "hi")[:10]



def ep(pod, ns, svc, ver, addr, draining, owner):
    return ("RME1\n%s\n%s\n%s\n%s\n%s\n%d\n%s\n" % (pod, ns, svc, ver, addr, draining,
                                                     owner)).encode()


e1 = ep("web-1", "default", "web", "v1", "10.0.0.5:8080", 0, "boot-4f2a")
e2 = ep("", "prod", "api", "", "10.0.0.6:9090", 1, "boot-77")
seeds["range_endpoints"] = b"\x00" + field(1, header) + \
    field(2, kv(b"/remora/v1/endpoints/default/web-1", e1)) + \
    field(2, kv(b"/remora/v1/endpoints/prod/@10.0.0.6:9090", e2)) + field(4, 2)
seeds["lease_grant"] = b"\x03" + field(1, header) + field(2, 0x694d8e3b1c2a0004) + field(3, 10)
seeds["lease_grant_error"] = b"\x03" + field(1, header) + field(4, b"etcdserver: too many")
seeds["keepalive_live"] = b"\x04" + field(1, header) + field(2, 0x694d8e3b1c2a0004) + \
    field(3, 10)
seeds["keepalive_gone"] = b"\x04" + field(1, header) + field(2, 0x694d8e3b1c2a0004)
seeds["ep_value"] = b"\x05" + e1
seeds["ep_value_nopod"] = b"\x05" + e2
seeds["ep_value_cut"] = b"\x05" + e1[:-3]
seeds["txn_failed_append"] = b"\x06" + field(1, header) + \
    field(3, field(1, field(1, header) + field(2, kv(key("versions", 7), b"")) + field(4, 7)))
seeds["txn_delete"] = b"\x06" + field(1, header) + field(2, 1) + \
    field(3, field(3, field(1, header) + field(2, 1) +
                   field(3, kv(b"/remora/v1/endpoints/default/web-1", e1))))

os.makedirs(os.path.join(HERE, "corpus"), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, "corpus", name), "wb") as f:
        f.write(data)
