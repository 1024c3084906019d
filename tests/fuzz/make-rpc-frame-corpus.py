#!/usr/bin/python3
"""Writes the seed corpus of fuzz_rpc_frame into tests/fuzz/corpus/rpc_frame/.

Each file: one byte choosing the piece size (byte % 64 + 1) the stream
arrives in, then the bytes a peer sends.  Rerun after changing the frame
format; the files are committed."""
import os
import struct
import sys

MAGIC = 0x4B564352
RESP, ERR, ONEWAY = 1, 2, 4


def hdr(flags, method, rid, length, magic=MAGIC, version=1, reserved=0):
    return struct.pack(">IBBHIQI", magic, version, flags, reserved, method, rid, length)


def frame(flags, method, rid, payload=b""):
    return hdr(flags, method, rid, len(payload)) + payload


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ping(seq, data=b""):
    p = b"\x08" + varint(seq)
    if data:
        p += b"\x12" + varint(len(data)) + data
    return p


def error(code, msg):
    m = msg.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(m)) + m


C = {}
C["echo"] = b"\x3f" + frame(0, 0x10, 1, ping(7, b"hello"))
C["echo-bytewise"] = b"\x00" + frame(0, 0x10, 1, ping(7, b"hello")) + frame(0, 0x10, 2, ping(8))
C["all-methods"] = b"\x3f" + b"".join([
    frame(0, 0x11, 5, ping(1)), frame(0, 0x13, 6), frame(0, 0x12, 7, error(3, "x")),
    frame(0, 0x10, 8, ping(2)), frame(0, 0x14, 9), frame(0, 0x10, 10, ping(3))])
C["oneway"] = b"\x07" + frame(ONEWAY, 0x10, 0, ping(1)) + frame(ONEWAY, 0x77, 0) + \
    frame(ONEWAY, 0x12, 0, b"\xff\xff")
C["responses"] = b"\x3f" + b"".join([
    frame(RESP, 0x10, 1, ping(1, b"a")), frame(RESP | ERR, 0x11, 2, error(9, "nope")),
    frame(RESP, 0x12, 3, b"\xff\xff\xff"), frame(RESP | ERR, 0x13, 4, b"\x0a\x05"),
    frame(RESP, 0x10, 99, ping(5)), frame(RESP, 0x10, 1, ping(1))])
C["error-code-zero"] = b"\x3f" + frame(RESP | ERR, 0x10, 1, error(0, "")) + \
    frame(RESP | ERR, 0x10, 2, b"\x08\xff\xff\xff\xff\x0f")
C["bad-magic"] = b"\x3f" + hdr(0, 0x10, 1, 0, magic=0x47455420) + b"garbage"
C["bad-version"] = b"\x3f" + hdr(0, 0x10, 1, 0, version=2)
C["bad-reserved"] = b"\x3f" + hdr(0, 0x10, 1, 0, reserved=1)
C["unknown-flags"] = b"\x3f" + hdr(0x80, 0x10, 1, 0)
C["error-without-response"] = b"\x3f" + hdr(ERR, 0x10, 1, 0)
C["response-oneway"] = b"\x3f" + hdr(RESP | ONEWAY, 0x10, 1, 0)
C["request-id-zero"] = b"\x3f" + hdr(0, 0x10, 0, 0)
C["oversized-4g"] = b"\x3f" + hdr(0, 0x10, 1, 0xFFFFFFFF)
C["oversized-limit-plus-one"] = b"\x3f" + hdr(0, 0x10, 1, 4097) + b"\x00" * 100
C["at-limit"] = b"\x3f" + frame(0, 0x10, 1, b"\x12" + varint(4093) + b"z" * 4093)
C["oversized-oneway"] = b"\x3f" + hdr(ONEWAY, 0x10, 0, 5000)
C["truncated-header"] = b"\x3f" + hdr(0, 0x10, 1, 5)[:13]
C["truncated-payload"] = b"\x3f" + hdr(0, 0x10, 1, 50) + ping(1)
C["unknown-method"] = b"\x3f" + frame(0, 0xDEADBEEF, 3) + frame(0, 0x10, 4, ping(1))
C["undecodable-payload"] = b"\x3f" + frame(0, 0x10, 1, b"\xff" * 16) + \
    frame(0, 0x10, 2, b"\x12\xff\xff\xff\xff\x0f") + frame(0, 0x10, 3, b"\x0a")
C["huge-varint-length"] = b"\x3f" + frame(0, 0x10, 1, b"\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01")
C["stray-hello"] = b"\x3f" + frame(ONEWAY, 2, 0) + frame(ONEWAY, 2, 0, b"x") + frame(0, 2, 5)
C["builtin-ping"] = b"\x3f" + frame(0, 1, 1, ping(3, b"p" * 100)) + frame(ONEWAY, 1, 0, ping(1))
C["many-echo"] = b"\x3f" + b"".join(frame(0, 0x10, i + 1, ping(i)) for i in range(100))
C["hold-many"] = b"\x3f" + b"".join(frame(0, 0x11, i + 1, ping(i)) for i in range(12))
C["close-then-more"] = b"\x3f" + frame(0, 0x14, 1) + frame(0, 0x10, 2, ping(1))
C["max-ids"] = b"\x3f" + frame(0, 0x10, 0xFFFFFFFFFFFFFFFF, ping(1)) + \
    frame(RESP, 0x10, 0xFFFFFFFFFFFFFFFF, ping(1))
C["empty"] = b""
C["one-byte"] = b"\x05"

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "rpc_frame")
os.makedirs(out, exist_ok=True)
for name, data in C.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d files to %s" % (len(C), out), file=sys.stderr)
