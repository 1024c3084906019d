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

from kvctest import BUILDDIR, binpath, wait_for
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
