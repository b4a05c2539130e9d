"""tests/fuzz/etcd/make_corpus.py — writes the seed corpus of etcd_fuzz: a Range reply with two
config records, a Watch reply that creates the watch, one with PUT events, one cancelled, and raw
records. The protobuf wire format is written by hand (no generated modules needed)."""
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

os.makedirs(os.path.join(HERE, "corpus"), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, "corpus", name), "wb") as f:
        f.write(data)
