#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_virtio_net.c (its opcodes are
documented there) into tests/fuzz/corpus/virtio_net/."""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "virtio_net")
MAC = bytes([0x00, 0x50, 0x56, 0x00, 0x00, 0x01])
PEER = bytes([0x00, 0x50, 0x56, 0x00, 0x00, 0x02])


def mmio(off, v):
    return struct.pack("<BHI", 0, off, v)


def ram(gpa, data):
    assert gpa % 16 == 0 and len(data) < 256
    return struct.pack("<BHB", 2, gpa // 16, len(data)) + data


def desc(q, i, addr, length, flags=0, nxt=0):
    base = 0x1000 if q == 0 else 0x4000
    return ram(base + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))


def avail(q, idx, heads):
    base = 0x2000 if q == 0 else 0x5000
    return ram(base, struct.pack("<HH", 0, idx) + b"".join(struct.pack("<H", h) for h in heads))


def frame(n, fill=0x5a, dst=PEER):
    return bytes(12) + dst + MAC + b"\x08\x00" + bytes([fill]) * (n - 14)


def sw_frame(length, slot_len, fill=0x11):
    return struct.pack("<BHHB", 4, length, slot_len, fill)


POLL, DRAIN, SAVE, UP = b"\x03", b"\x05", b"\x08", b"\x09"


def wild(which, v):
    return struct.pack("<BBI", 6, which, v)


def link(up):
    return struct.pack("<BB", 7, up)


seeds = {
    "tx_rx": UP + desc(1, 0, 0x8000, 12 + 60) + ram(0x8000, frame(60)) + avail(1, 1, [0])
    + desc(0, 0, 0x9000, 2048, 2) + avail(0, 1, [0]) + sw_frame(100, 100) + POLL + DRAIN
    + POLL + SAVE,
    "tx_chain": UP + desc(1, 0, 0x8000, 5, 1, 1) + desc(1, 1, 0x8005, 7 + 60)
    + ram(0x8000, frame(60)) + avail(1, 1, [0]) + POLL + SAVE,
    "desc_loop": UP + desc(1, 0, 0x8000, 40, 1, 1) + desc(1, 1, 0x8000, 40, 1, 0)
    + avail(1, 1, [0]) + POLL + desc(0, 0, 0x9000, 2048, 2) + avail(0, 1, [0])
    + sw_frame(64, 64) + POLL,
    "out_of_ram": UP + desc(1, 0, 0xfff0, 4096) + avail(1, 1, [0]) + POLL
    + desc(0, 0, 0xffff0000, 2048, 2) + avail(0, 1, [0]) + sw_frame(64, 64) + POLL,
    "runt_oversize": UP + desc(1, 0, 0x8000, 12 + 5) + desc(1, 1, 0x8000, 12 + 4000)
    + ram(0x8000, frame(60)) + avail(1, 2, [0, 1]) + POLL,
    "wild_indexes": UP + desc(0, 0, 0x9000, 2048, 2) + avail(0, 1, [0]) + wild(0, 0x7fffffff)
    + POLL + wild(1, 999) + desc(1, 0, 0x8000, 72) + avail(1, 1, [0]) + POLL + wild(1, 0)
    + POLL + sw_frame(64, 9999) + sw_frame(64, 2) + POLL,
    "small_rx_buf": UP + desc(0, 0, 0x9000, 20, 2) + desc(0, 1, 0xa000, 2048, 2)
    + avail(0, 2, [0, 1]) + sw_frame(200, 200) + sw_frame(200, 200) + POLL,
    "link_flap": UP + link(0) + desc(1, 0, 0x8000, 72) + ram(0x8000, frame(60))
    + avail(1, 1, [0]) + sw_frame(64, 64) + POLL + link(1) + desc(0, 0, 0x9000, 2048, 2)
    + avail(0, 1, [0]) + sw_frame(64, 64) + POLL + SAVE,
    "ring_full": UP + b"".join(desc(1, i, 0x8000, 72) for i in range(12)) + ram(0x8000, frame(60))
    + avail(1, 12, list(range(12))) + POLL + DRAIN + POLL + DRAIN + POLL,
    "regs": mmio(0x70, 3) + mmio(0x30, 7) + mmio(0x38, 4096) + mmio(0x44, 1) + mmio(0x50, 1)
    + struct.pack("<BH", 1, 0x100 | 0xc000) + struct.pack("<BH", 1, 0x108) + mmio(0x70, 0) + UP
    + mmio(0x30, 1) + mmio(0x44, 0) + mmio(0x80, 0x12345) + mmio(0x44, 1) + POLL,
}
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
