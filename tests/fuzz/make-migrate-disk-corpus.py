#!/usr/bin/env python3
"""Seeds for fuzz_migrate_disk (record layout in fuzz_migrate_disk.c):
usage: make-migrate-disk-corpus.py DIR"""
import os
import struct
import sys

BEGIN, FILE, DATA, END = 0, 1, 2, 3
DISK = 64 * 1024


def rec(t, body=b"", arg=0):
    return struct.pack("<BIH", t, arg, len(body)) + body


def begin(n, cap=DISK, base=b"p.img"):
    return rec(BEGIN, struct.pack("<IQI", n, cap, len(base)) + base)


def dfile(i, name, size):
    return rec(FILE, struct.pack("<Q", size) + name, i)


def data(i, off, b):
    return rec(DATA, struct.pack("<Q", off) + b, i)




SEEDS = {
    "base-only": begin(1) + dfile(0, b"p.img", DISK) + data(0, 0, b"\xab" * 4096) + rec(END),
    "base-two-pieces": begin(1) + dfile(0, b"p.img", DISK) + data(0, 4096, b"x" * 512)
    + data(0, DISK - 512, b"y" * 512) + rec(END),
    "chain-bad": begin(2) + dfile(0, b"p.img", DISK) + dfile(1, b"p.img.chain", 20)
    + data(1, 0, b"kvc-disk-chain 1\nzz\n") + rec(END),
    "delta-files": begin(4) + dfile(0, b"p.img", DISK) + dfile(1, b"p-000001-delta.img", DISK)
    + dfile(2, b"p-000001-delta.map", 4096 + 2) + dfile(3, b"p.img.chain", 0) + rec(END),
    "bad-name": begin(2) + dfile(0, b"p.img", DISK) + dfile(1, b"../p-delta.img", 8),
    "data-outside": begin(1) + dfile(0, b"p.img", DISK) + data(0, DISK, b"z" * 16),
    "end-early": begin(3) + dfile(0, b"p.img", DISK) + rec(END),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, b in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b)


if __name__ == "__main__":
    main()
