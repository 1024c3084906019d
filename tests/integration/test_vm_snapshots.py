"""VM snapshots through vpxd (/api/kvc/vm/{vm}/snapshots): take, list,
revert and delete through the VM's host (VM_SNAPSHOT_* of the host protocol;
hostd/snapshots.c keeps the index, <name>.vmsd in the VM's folder).

The sim backend models the power state a snapshot keeps: a snapshot with
memory of a running VM reverts to running, one without to powered off."""
import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import pytest

from kvctest import BUILDDIR, binpath, control_line, wait_for
from test_kvcenter_up_kvm import Cluster

UP = os.path.join(BUILDDIR, "kvcenter-up")

pytestmark = pytest.mark.skipif(not os.path.exists(UP), reason="kvcenter-up not built")


@pytest.fixture(scope="module")
def cluster():
    with tempfile.TemporaryDirectory(prefix="kvc-snap-") as tmp:
        c = Cluster(tmp, 1, 1, backend="sim")
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()
        # Under the sanitizers a daemon's report lands in its log.
        for root, _, files in os.walk(c.dir):
            for f in files:
                if f.endswith(".log"):
                    with open(os.path.join(root, f), errors="replace") as fh:
                        text = fh.read()
                    assert "AddressSanitizer" not in text and "runtime error:" not in text, f


def the_vm(c):
    st, vms = c.api("GET", "/api/vcenter/vm")
    assert st == 200 and vms, (st, vms)
    return vms[0]


def power(c, vm):
    st, js = c.api("GET", "/api/vcenter/vm/%s/power" % vm)
    assert st == 200, (st, js)
    return js["state"]


def wait_power(c, vm, state):
    wait_for(lambda: power(c, vm) == state, 30, "VM %s %s" % (vm, state))


def snaps(c, vm):
    st, js = c.api("GET", "/api/kvc/vm/%s/snapshots" % vm)
    assert st == 200, (st, js)
    return js


def folder(c, v):
    return os.path.join(c.dir, "datastores", "shared", v["name"])


def test_take_revert_delete_round_trip(cluster):
    c = cluster
    v = the_vm(c)
    vm = v["vm"]
    wait_power(c, vm, "POWERED_ON")
    assert snaps(c, vm) == []

    st, s1 = c.api("POST", "/api/kvc/vm/%s/snapshots" % vm,
                   {"name": "before-upgrade", "description": "clean", "memory": True})
    assert st == 201, (st, s1)
    assert s1["name"] == "before-upgrade" and s1["description"] == "clean"
    assert s1["power_state"] == "POWERED_ON" and s1["memory"] is True and s1["current"]
    assert s1["created"].endswith("Z")
    d = folder(c, v)
    assert os.path.exists(os.path.join(d, "%s.vmsd" % v["name"]))
    assert os.path.exists(os.path.join(d, "%s-snap-%s.vmsn" % (v["name"], s1["snapshot"])))

    # Power off, then revert: a memory snapshot brings the running VM back.
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st in (200, 204), (st, js)
    wait_power(c, vm, "POWERED_OFF")
    st, js = c.api("POST", "/api/kvc/vm/%s/snapshots/%s?action=revert" % (vm, s1["snapshot"]))
    assert st == 200 and js["snapshot"] == s1["snapshot"] and js["current"], (st, js)
    wait_power(c, vm, "POWERED_ON")

    # Without memory: disk only, a revert leaves the VM powered off.
    st, s2 = c.api("POST", "/api/kvc/vm/%s/snapshots" % vm, {"name": "disk-only"})
    assert st == 201 and s2["memory"] is False and s2["power_state"] == "POWERED_OFF", (st, s2)
    assert s2["snapshot"] != s1["snapshot"]
    listed = snaps(c, vm)
    assert [s["name"] for s in listed] == ["before-upgrade", "disk-only"]
    assert [s["current"] for s in listed] == [False, True]
    st, js = c.api("POST", "/api/kvc/vm/%s/snapshots/%s?action=revert" % (vm, s2["snapshot"]))
    assert st == 200, (st, js)
    wait_power(c, vm, "POWERED_OFF")

    # Snapshots of a powered-off VM have no memory, whatever is asked.
    st, s3 = c.api("POST", "/api/kvc/vm/%s/snapshots" % vm, {"name": "off", "memory": True})
    assert st == 201 and s3["memory"] is False and s3["power_state"] == "POWERED_OFF", (st, s3)

    for s in (s1, s2, s3):
        st, js = c.api("DELETE", "/api/kvc/vm/%s/snapshots/%s" % (vm, s["snapshot"]))
        assert st == 204, (st, js)
        assert not os.path.exists(os.path.join(d, "%s-snap-%s.vmsn" % (v["name"],
                                                                     s["snapshot"])))
    assert snaps(c, vm) == []
    st, js = c.api("DELETE", "/api/kvc/vm/%s/snapshots/%s" % (vm, s1["snapshot"]))
    assert st == 404 and js["error_type"] == "NOT_FOUND", (st, js)
    # Ids are not reused.
    st, s4 = c.api("POST", "/api/kvc/vm/%s/snapshots" % vm, {"name": "again"})
    assert st == 201 and int(s4["snapshot"]) > int(s3["snapshot"]), (st, s4)
    st, js = c.api("DELETE", "/api/kvc/vm/%s/snapshots/%s" % (vm, s4["snapshot"]))
    assert st == 204, (st, js)


def test_bad_requests_change_nothing(cluster):
    c = cluster
    v = the_vm(c)
    vm = v["vm"]
    # Names keep their spaces (the index is read back as written).
    st, keep = c.api("POST", "/api/kvc/vm/%s/snapshots" % vm, {"name": " keep it "})
    assert st == 201, (st, keep)
    before = snaps(c, vm)
    assert [s["name"] for s in before] == [" keep it "], before
    base = "/api/kvc/vm/%s/snapshots" % vm
    for body in ({}, {"name": ""}, {"name": 5}, {"name": "a\nb"}, {"name": "x" * 81},
                 {"name": "ok", "memory": "yes"}, {"name": "ok", "description": "\t"},
                 {"name": "ok", "colour": "red"}, []):
        st, js = c.api("POST", base, body)
        assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", (body, st, js)
    st, js = c.api("POST", base, {"name": " keep it "})
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)
    for sid in ("abc", "0", "-1", "1x", "99999999999"):
        st, js = c.api("POST", "%s/%s?action=revert" % (base, sid))
        assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", (sid, st, js)
        st, js = c.api("DELETE", "%s/%s" % (base, sid))
        assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", (sid, st, js)
    st, js = c.api("POST", "%s/4242?action=revert" % base)
    assert st == 404 and js["error_type"] == "NOT_FOUND", (st, js)
    st, js = c.api("DELETE", "%s/4242" % base)
    assert st == 404 and js["error_type"] == "NOT_FOUND", (st, js)
    for path in ("/api/kvc/vm/vm-999999/snapshots",):
        st, js = c.api("GET", path)
        assert st == 404 and js["error_type"] == "NOT_FOUND", (st, js)
        st, js = c.api("POST", path, {"name": "x"})
        assert st == 404 and js["error_type"] == "NOT_FOUND", (st, js)
    assert snaps(c, vm) == before
    st, js = c.api("DELETE", "%s/%s" % (base, keep["snapshot"]))
    assert st == 204, (st, js)


def kvcli(c, *args):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    g = ["--server", c.url(), "--user", c.get("USER")[0], "--password",
         c.get("PASSWORD")[0], "--thumbprint", c.get("THUMBPRINT")[0]]
    return subprocess.run([binpath("cli/kvcli")] + g + list(args), capture_output=True,
                          text=True, timeout=60, env=e, stdin=subprocess.DEVNULL)


def ok(c, *args):
    r = kvcli(c, *args)
    assert r.returncode == 0 and r.stderr == "", (args, r.returncode, r.stderr)
    return r.stdout


KEYS = ["Snapshot", "Name", "Description", "Created", "PowerState", "Memory", "Current"]


def test_kvcli_vm_snapshot(cluster):
    c = cluster
    vm = the_vm(c)["vm"]
    out = ok(c, "vm", "snapshot", "create", "--vm", vm, "--name", "cli-one",
             "--description", "from kvcli")
    assert "   Name: cli-one\n" in out and "   Description: from kvcli\n" in out, out
    assert "   Current: true\n" in out, out
    sid = [l.split(": ", 1)[1] for l in out.split("\n") if l.startswith("   Snapshot: ")][0]

    js = json.loads(ok(c, "--formatter=json", "vm", "snapshot", "list", "--vm", vm))
    assert [r["Name"] for r in js] == ["cli-one"] and sorted(js[0]) == sorted(KEYS), js
    assert js[0]["Snapshot"] == sid and js[0]["Current"] is True
    table = ok(c, "vm", "snapshot", "list", "--vm", vm).rstrip("\n").split("\n")
    assert table[0].split()[:2] == ["Snapshot", "Name"] and set(table[1]) <= {"-", " "}
    assert len(table) == 3 and "cli-one" in table[2], table
    csv = ok(c, "--formatter=csv", "vm", "snapshot", "list", "--vm", vm).split("\n")
    assert csv[0] == ",".join(sorted(KEYS)) + ","
    kv = ok(c, "--formatter=keyvalue", "vm", "snapshot", "list", "--vm", vm).split("\n")
    assert "VmSnapshot.Name.string=cli-one" in kv, kv
    xml = ET.fromstring(ok(c, "--formatter=xml", "vm", "snapshot", "list", "--vm", vm))
    assert any(s.get("typeName") == "VmSnapshot" for s in xml.iter() if s.tag.endswith(
        "structure"))

    assert ok(c, "vm", "snapshot", "revert", "--vm", vm, "--snapshot", sid) == ""
    r = kvcli(c, "vm", "snapshot", "revert", "--vm", vm, "--snapshot", "x1")
    assert r.returncode != 0 and "--snapshot" in r.stderr and r.stdout == "", r
    r = kvcli(c, "vm", "snapshot", "remove", "--vm", vm, "--snapshot", "4242")
    assert r.returncode != 0 and "4242" in r.stderr and r.stdout == "", r
    r = kvcli(c, "vm", "snapshot", "create", "--vm", vm)
    assert r.returncode != 0 and "name" in r.stderr, r
    assert ok(c, "vm", "snapshot", "remove", "--vm", vm, "--snapshot", sid) == ""
    assert json.loads(ok(c, "--formatter=json", "vm", "snapshot", "list", "--vm", vm)) == []


# ---- the kvm backend: real vmx, real disks ---------------------------------
#
# One kvm host (hostd + vmkd + a vmx per running VM).  The VMs have an 8 MiB
# disk and run the test guest's disk loop (write a pattern over 4 MiB,
# verify it, next seed, ...; "KVC-GUEST: disk loop pass=P" after each), so
# the guest's state and its disk move on all the time.

from test_kvcenter_up_kvm import skip_reason as kvm_skip_reason  # noqa: E402

import hashlib  # noqa: E402
import re  # noqa: E402

kvm_only = pytest.mark.skipif(kvm_skip_reason() is not None, reason=kvm_skip_reason() or "")

DISK = 8 << 20


@pytest.fixture(scope="module")
def kvm():
    with tempfile.TemporaryDirectory(prefix="kvc-snap-kvm-") as tmp:
        c = Cluster(tmp, 1, 0, backend="kvm")
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()
        for root, _, files in os.walk(c.dir):
            for f in files:
                if f.endswith(".log"):
                    with open(os.path.join(root, f), errors="replace") as fh:
                        text = fh.read()
                    assert "AddressSanitizer" not in text and "runtime error:" not in text, f


def host_control(c, line):
    return control_line(os.path.join(c.dir, "hosts", "esx-0", "state", "control.sock"), line)


def new_kvm_vm(c, name):
    """A powered-off VM with a disk, an adapter and the disk-loop workload:
    (id, folder)."""
    st, cls = c.api("GET", "/api/vcenter/cluster")
    assert st == 200 and cls, (st, cls)
    st, ds = c.api("GET", "/api/vcenter/datastore?names=shared")
    assert st == 200 and ds, (st, ds)
    st, net = c.api("GET", "/api/vcenter/network?names=VM%20Network")
    assert st == 200 and net, (st, net)
    st, vm = c.api("POST", "/api/vcenter/vm", {
        "name": name, "guest_OS": "OTHER_LINUX_64",
        "placement": {"cluster": cls[0]["cluster"], "datastore": ds[0]["datastore"]},
        "cpu": {"count": 1}, "memory": {"size_MiB": 64},
        "disks": [{"new_vmdk": {"capacity": DISK}}],
        "nics": [{"backing": {"type": "STANDARD_PORTGROUP", "network": net[0]["network"]}}]})
    assert st in (200, 201), (st, vm)
    d = os.path.join(c.dir, "datastores", "shared", name)
    wait_for(lambda: os.path.exists(os.path.join(d, name + ".img")), 30, "the VM's disk")
    r = host_control(c, "host 0 vm %s workload disk-loop" % name)
    assert r == "OK", r
    return vm, d


def start(c, vm):
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=start" % vm)
    assert st in (200, 204), (st, js)
    assert power(c, vm) == "POWERED_ON"


def stop(c, vm):
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st in (200, 204), (st, js)
    assert power(c, vm) == "POWERED_OFF"


def serial(d):
    try:
        with open(os.path.join(d, "serial.log"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def passes(text):
    return [int(p) for p in re.findall(r"KVC-GUEST: disk loop pass=(\d+)", text)]


def verifies(text):
    return [(int(b), int(e)) for b, e in
            re.findall(r"KVC-GUEST: disk verify sectors=\d+ bad=(\d+) errors=(\d+)", text)]


def wait_pass(d, at_least, since=0):
    return wait_for(lambda: (passes(serial(d)[since:]) or [-1])[-1] >= at_least and
                    passes(serial(d)[since:])[-1], 60, "disk loop pass %d" % at_least)


def chain(d, name):
    """({layer: parent}, top) of the VM's disk (vmkernel-kvm/disk.h)."""
    layers, top = {}, "-"
    p = os.path.join(d, name + ".img.chain")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                w = line.split()
                if w and w[0] == "layer":
                    layers[w[1]] = w[3]
                elif w and w[0] == "top":
                    top = w[1]
    return layers, top


def disk_view(d, name, top=None):
    """SHA-256 of the disk as seen through layer TOP (default: the chain's
    top): each 4 KiB cluster from the topmost layer whose map has it."""
    layers, t = chain(d, name)
    path, layer = [], top or t
    while layer != "-":
        path.append(layer)
        layer = layers[layer]
    with open(os.path.join(d, name + ".img"), "rb") as f:
        data = bytearray(f.read())
    for layer in reversed(path):
        with open(os.path.join(d, layer + ".map"), "rb") as f:
            bitmap = f.read()[4096:]
        with open(os.path.join(d, layer + ".img"), "rb") as f:
            for cl in range(len(data) // 4096):
                if bitmap[cl // 8] >> (cl % 8) & 1:
                    f.seek(cl * 4096)
                    data[cl * 4096:(cl + 1) * 4096] = f.read(4096).ljust(4096, b"\0")
    return hashlib.sha256(bytes(data)).hexdigest()


def vmsn(d, name, s):
    return os.path.join(d, "%s-snap-%s.vmsn" % (name, s["snapshot"]))


def take(c, vm, name, memory):
    st, s = c.api("POST", "/api/kvc/vm/%s/snapshots" % vm, {"name": name, "memory": memory})
    assert st == 201, (st, s)
    return s


def revert(c, vm, s):
    st, js = c.api("POST", "/api/kvc/vm/%s/snapshots/%s?action=revert" % (vm, s["snapshot"]))
    assert st == 200 and js["snapshot"] == s["snapshot"] and js["current"], (st, js)


def delete(c, vm, s):
    st, js = c.api("DELETE", "/api/kvc/vm/%s/snapshots/%s" % (vm, s["snapshot"]))
    assert st == 204, (st, js)


@kvm_only
def test_kvm_memory_snapshot_revert_runs_from_it(kvm):
    c = kvm
    name = "snap-mem"
    vm, d = new_kvm_vm(c, name)
    start(c, vm)
    with open(os.path.join(d, name + ".vmx-run")) as f:
        assert "net.enabled = true" in f.read()      # its adapter is state too
    wait_pass(d, 2)
    before = passes(serial(d))[-1]
    s = take(c, vm, "running", True)
    after = passes(serial(d))[-1]
    assert s["memory"] is True and s["power_state"] == "POWERED_ON", s
    assert power(c, vm) == "POWERED_ON"
    # vmx froze the base behind a delta; the state file holds the memory.
    layers, top = chain(d, name)
    assert list(layers.values()) == ["-"] and top in layers, (layers, top)
    assert os.path.getsize(vmsn(d, name, s)) > 64 << 10    # non-zero pages only

    # The guest goes on (and writes its disk), then the revert.
    wait_pass(d, after + 3)
    mark = len(serial(d))
    last = passes(serial(d))[-1]
    revert(c, vm, s)
    assert power(c, vm) == "POWERED_ON"
    # The guest runs on from the snapshot: no new boot, the loop back at
    # the pass it was in, and every verify still good (the disk went back
    # with the memory: a pass half written at the snapshot finishes right).
    # (The old vmx may have printed a pass after the mark, before it went.)
    def restored():
        got = passes(serial(d)[mark:])
        i = next((k for k, p in enumerate(got) if p <= after + 1), None)
        return got[i:] if i is not None and len(got) - i >= 3 else None
    wait_for(restored, 60, "three passes after the revert")
    # one reading for all that follows (the log grows meanwhile)
    text = serial(d)[mark:]
    got = passes(text)
    i = next(k for k, p in enumerate(got) if p <= after + 1)
    again = got[i:]
    assert all(p > after + 1 for p in got[:i]), (after, got)
    assert before < again[0] <= after + 1 < last, (before, after, last, got)
    assert again == list(range(again[0], again[0] + len(again))), got
    assert "KVC-GUEST: ready" not in text, text[:400]
    assert verifies(text) and all(v == (0, 0) for v in verifies(text)), verifies(text)
    # Its vmx started from the state file (vmx --restore through vmkd).
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm)[1]["run_state"] == "RUNNING",
             30, "tools RUNNING after the revert")

    # Delete while it runs: vmx consolidates the delta into the base.
    layers, top = chain(d, name)
    assert len(layers) == 1 and top in layers, (layers, top)   # the revert's new delta
    delete(c, vm, s)
    assert not os.path.exists(vmsn(d, name, s))
    layers, top = chain(d, name)
    assert layers == {} and top == "-", (layers, top)
    assert snaps(c, vm) == []
    assert power(c, vm) == "POWERED_ON"
    mark = len(serial(d))
    wait_for(lambda: len(passes(serial(d)[mark:])) >= 2, 60, "the loop runs on")
    assert all(v == (0, 0) for v in verifies(serial(d)[mark:]))
    stop(c, vm)


@kvm_only
def test_kvm_disk_only_snapshot_reverts_powered_off(kvm):
    c = kvm
    name = "snap-disk"
    vm, d = new_kvm_vm(c, name)
    start(c, vm)
    wait_pass(d, 1)
    s = take(c, vm, "disk only", False)
    assert s["memory"] is False and s["power_state"] == "POWERED_OFF", s
    assert power(c, vm) == "POWERED_ON"
    layers, top = chain(d, name)
    frozen = layers[top]
    at_snapshot = disk_view(d, name, frozen)      # a frozen layer never changes
    now = passes(serial(d))[-1]
    wait_pass(d, now + 2)

    revert(c, vm, s)
    # Without memory the VM is left powered off, its disk at the snapshot:
    # a new empty delta on the frozen layer, the one written since dropped.
    assert power(c, vm) == "POWERED_OFF"
    layers2, top2 = chain(d, name)
    assert layers2.get(top2) == frozen and top not in layers2, (layers2, top2)
    assert disk_view(d, name) == at_snapshot
    assert snaps(c, vm)[0]["current"] is True

    # A power-on boots afresh on that disk.
    mark = len(serial(d))
    start(c, vm)
    wait_for(lambda: passes(serial(d)[mark:]), 60, "the loop after the power-on")
    text = serial(d)[mark:]
    assert text.count("KVC-GUEST: ready") == 1 and all(v == (0, 0) for v in verifies(text))
    stop(c, vm)
    delete(c, vm, s)
    assert not os.path.exists(vmsn(d, name, s)) and snaps(c, vm) == []


@kvm_only
def test_kvm_powered_off_vm_snapshot_revert_delete(kvm):
    c = kvm
    name = "snap-off"
    vm, d = new_kvm_vm(c, name)
    start(c, vm)
    wait_pass(d, 1)
    stop(c, vm)
    v0 = disk_view(d, name)
    layers0, top0 = chain(d, name)

    # No vmx runs: hostd freezes the disk itself and writes a state file
    # without memory (whatever was asked).
    s1 = take(c, vm, "off one", True)
    assert s1["memory"] is False and s1["power_state"] == "POWERED_OFF", s1
    assert os.path.getsize(vmsn(d, name, s1)) < 4096
    layers, top = chain(d, name)
    assert len(layers) == len(layers0) + 1 and layers[top] == top0, (layers, top)
    assert disk_view(d, name) == v0

    # The guest changes the disk (passes beyond the first boot's: other
    # seeds); the revert (powered off) brings it back.
    first = passes(serial(d))[-1]
    mark = len(serial(d))
    start(c, vm)
    wait_pass(d, first + 2, since=mark)
    stop(c, vm)
    v1 = disk_view(d, name)
    assert v1 != v0
    revert(c, vm, s1)
    assert power(c, vm) == "POWERED_OFF"
    assert disk_view(d, name) == v0

    # A second snapshot on top, then a revert to the first leaves a branch
    # on its layer: deleting the first is refused and changes nothing.
    s2 = take(c, vm, "off two", False)
    revert(c, vm, s1)
    files = sorted(os.listdir(d))
    chain_before = chain(d, name)
    listed = snaps(c, vm)
    st, js = c.api("DELETE", "/api/kvc/vm/%s/snapshots/%s" % (vm, s1["snapshot"]))
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)
    assert sorted(os.listdir(d)) == files and chain(d, name) == chain_before
    assert snaps(c, vm) == listed
    # Deleting the second drops its layer (nothing was built on it), then
    # the first merges its one child: every layer this test made is gone,
    # and the disk reads the same.
    delete(c, vm, s2)
    assert not os.path.exists(vmsn(d, name, s2))
    assert disk_view(d, name) == v0
    delete(c, vm, s1)
    assert not os.path.exists(vmsn(d, name, s1))
    layers, top = chain(d, name)
    assert len(layers) <= len(layers0), (layers0, layers)
    assert disk_view(d, name) == v0
    assert snaps(c, vm) == []


@kvm_only
def test_kvm_bad_requests_change_nothing(kvm):
    c = kvm
    name = "snap-bad"
    vm, d = new_kvm_vm(c, name)
    start(c, vm)
    wait_pass(d, 1)
    s = take(c, vm, "keep", True)
    base = "/api/kvc/vm/%s/snapshots" % vm

    def state():
        return sorted(os.listdir(d)), chain(d, name), snaps(c, vm)
    before = state()
    st, js = c.api("POST", base, {"name": "keep"})
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)
    st, js = c.api("POST", base, {"name": "x" * 81})
    assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", (st, js)
    st, js = c.api("POST", "%s/4242?action=revert" % base)
    assert st == 404, (st, js)
    st, js = c.api("DELETE", "%s/4242" % base)
    assert st == 404, (st, js)
    assert state() == before

    # A damaged state file: the revert is refused before the VM is touched
    # (it runs on, the same guest), with the reason.
    p = vmsn(d, name, s)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)
    before = state()
    st, js = c.api("POST", "%s/%s?action=revert" % (base, s["snapshot"]))
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)
    assert "truncated" in js["messages"][0]["default_message"], js
    assert power(c, vm) == "POWERED_ON" and state() == before
    mark = len(serial(d))
    wait_for(lambda: len(passes(serial(d)[mark:])) >= 1, 60, "the guest runs on")
    assert "KVC-GUEST: ready" not in serial(d)[mark:]
    # It can still be deleted (its disk section is whole): the delta merges.
    delete(c, vm, s)
    assert snaps(c, vm) == [] and not os.path.exists(p)
    assert chain(d, name) == ({}, "-")
    stop(c, vm)

    # Powered off: a damaged file is refused by the revert too.
    s = take(c, vm, "offline", False)
    p = vmsn(d, name, s)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) - 16)      # no END section
    before = state()
    st, js = c.api("POST", "%s/%s?action=revert" % (base, s["snapshot"]))
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)
    assert "truncated" in js["messages"][0]["default_message"], js
    assert power(c, vm) == "POWERED_OFF" and state() == before
    delete(c, vm, s)
    assert snaps(c, vm) == [] and not os.path.exists(p)


@kvm_only
def test_kvm_suspended_vm_snapshot_and_revert(kvm):
    c = kvm
    name = "snap-susp"
    vm, d = new_kvm_vm(c, name)
    start(c, vm)
    wait_pass(d, 1)
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=suspend" % vm)
    assert st in (200, 204), (st, js)
    assert power(c, vm) == "SUSPENDED"
    vmss = os.path.join(d, name + ".vmss")
    assert os.path.exists(vmss)

    # No vmx runs: a disk-only snapshot on top of the layer the suspend froze.
    s = take(c, vm, "while suspended", True)
    assert s["memory"] is False and s["power_state"] == "POWERED_OFF", s
    assert power(c, vm) == "SUSPENDED" and os.path.exists(vmss)
    at_snapshot = disk_view(d, name)

    # The suspended guest still resumes where it was (its own frozen layer).
    mark = len(serial(d))
    start(c, vm)
    last = passes(serial(d)[:mark])[-1]
    got = wait_for(lambda: len(passes(serial(d)[mark:])) >= 2 and passes(serial(d)[mark:]),
                   60, "the loop after the resume")
    text = serial(d)[mark:]
    assert "KVC-GUEST: ready" not in text and got[0] == last + 1, (last, got)
    assert all(v == (0, 0) for v in verifies(text)), verifies(text)

    # Suspended again, then the revert: the suspended state is discarded and
    # the VM is left powered off, its disk as at the snapshot.
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=suspend" % vm)
    assert st in (200, 204) and power(c, vm) == "SUSPENDED", (st, js)
    revert(c, vm, s)
    assert power(c, vm) == "POWERED_OFF" and not os.path.exists(vmss)
    assert disk_view(d, name) == at_snapshot
    delete(c, vm, s)
    assert not os.path.exists(vmsn(d, name, s)) and snaps(c, vm) == []
    mark = len(serial(d))
    start(c, vm)
    wait_for(lambda: passes(serial(d)[mark:]), 60, "the loop after a fresh boot")
    assert serial(d)[mark:].count("KVC-GUEST: ready") == 1
    stop(c, vm)
