"""vMotion of a real guest between two kvm hosts of a kvcenter-up cluster:
vpxd orchestrates both hostds, the destination's vmkd starts vmx --incoming,
the memory streams from the source vmx to the destination vmx over TLS
pinned to the hosts' certificates, and the guest runs on without a reboot
(its console answers, its tools beat) on the destination only.  With a
datastore only the destination sees, the disk travels over the same stream
(the guest's disk loop verifies on across it); a cancel during the disk
copy leaves the VM running on its source, once, and nothing on the
destination."""
import os
import subprocess
import tempfile

import pytest

from kvctest import binpath, control_line, wait_for
from test_kvcenter_up_kvm import Cluster, group_members, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


@pytest.fixture
def cluster():
    with tempfile.TemporaryDirectory(prefix="kvc-vmotion-") as tmp:
        c = Cluster(tmp, 2, 1)
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()


def vmx_hosts(c, leaders=None):
    """The host ids whose process group holds a vmx."""
    out = []
    for line in c.get("HOST"):
        hid, pgid = line.split()[0], int(line.split()[1])
        if "vmx" in [x for _, x in group_members(pgid)]:
            out.append(hid)
    return out


def port_on(c, host_index, uuid):
    """The VM's vSwitch port on host HOST_INDEX's vmkd ("" if none)."""
    sock = os.path.join(c.dir, "hosts", "esx-%d" % host_index, "vmkd.sock")
    p = subprocess.run([binpath("vmkernel-kvm/vmkdctl"), "-s", sock, "net-stats", uuid],
                       capture_output=True, text=True, timeout=30)
    return p.stdout if p.returncode == 0 else ""


def console(c, vm, offset=0):
    st, js = c.api("GET", "/api/kvc/vm/%s/console?offset=%d" % (vm, offset))
    assert st == 200, js
    return js


def test_live_migration_keeps_the_guest_running(cluster):
    c = cluster
    hosts = [l.split()[0] for l in c.get("HOST")]
    leaders = [int(l.split()[1]) for l in c.get("HOST")]
    st, vms = c.api("GET", "/api/vcenter/vm")
    vm = vms[0]["vm"]
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm)[1]["run_state"]
             == "RUNNING", 30, "tools RUNNING")
    src = wait_for(lambda: vmx_hosts(c, leaders), 10, "the VM's vmx")
    assert len(src) == 1
    dst = [h for h in hosts if h != src[0]][0]
    serial = os.path.join(c.dir, "datastores", "shared", vms[0]["name"], "serial.log")

    def readies():
        with open(serial) as f:
            return f.read().count("KVC-GUEST: ready")
    assert readies() == 1

    # Its adapter is a port on the source host's vSwitch ("VM Network", a
    # VXLAN segment spanning the hosts).
    st, info = c.api("GET", "/api/vcenter/vm/%s" % vm)
    uuid = info["identity"]["instance_uuid"]
    idx = {h: i for i, h in enumerate(hosts)}
    assert 'portgroup="VM Network"' in port_on(c, idx[src[0]], uuid)
    assert port_on(c, idx[dst], uuid) == ""

    st, tid = c.api("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % vm,
                    {"placement": {"host": dst}})
    assert st == 202, tid

    def done():
        st, t = c.api("GET", "/api/cis/tasks/" + tid)
        return t if t["status"] in ("SUCCEEDED", "FAILED") else None
    t = wait_for(done, 90, "the relocate task")
    assert t["status"] == "SUCCEEDED", t

    # One copy, on the destination, running.
    st, on_dst = c.api("GET", "/api/vcenter/vm?hosts=" + dst)
    st, on_src = c.api("GET", "/api/vcenter/vm?hosts=" + src[0])
    assert [v["vm"] for v in on_dst] == [vm] and on_src == []
    wait_for(lambda: vmx_hosts(c, leaders) == [dst], 20, "the vmx only on the destination")
    st, p = c.api("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm)[1]["run_state"]
             == "RUNNING", 30, "tools RUNNING on the destination")

    # Its port moved with it.
    wait_for(lambda: 'portgroup="VM Network"' in port_on(c, idx[dst], uuid), 10,
             "the port on the destination's vSwitch")
    wait_for(lambda: port_on(c, idx[src[0]], uuid) == "", 10, "no port left on the source")

    # The same guest, not a rebooted one: no second "ready" in its serial log
    # (the console ring is the new vmx's), and it answers.
    st, js = c.api("POST", "/api/kvc/vm/%s/console" % vm, {"data": "after vmotion\n"})
    assert st == 200, js
    wait_for(lambda: "KVC-GUEST: console: after vmotion" in console(c, vm)["data"], 20,
             "the migrated guest echoes typed input")
    assert readies() == 1
    st, ev = c.api("GET", "/api/kvc/events?object=%s" % vm)
    assert any(e.get("type") == "VmMigratedEvent" for e in ev), ev

    # And back again.
    st, js = c.api("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                   {"placement": {"host": src[0]}})
    assert st == 204, js
    wait_for(lambda: vmx_hosts(c, leaders) == [src[0]], 20, "back on the source")
    assert readies() == 1

    # To a datastore only the destination sees: this VM has no disk, so
    # only its memory goes, into a folder made there, under a lease of its
    # own (the source's is released, not handed over); the old folder goes.
    ds = c.api("GET", "/api/vcenter/datastore?names=local-esx-%d" % idx[dst])[1][0]["datastore"]
    st, js = c.api("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                   {"placement": {"host": dst, "datastore": ds}})
    assert st == 204, js
    wait_for(lambda: vmx_hosts(c, leaders) == [dst], 20, "the vmx on the destination")
    st, info = c.api("GET", "/api/vcenter/vm/%s" % vm)
    assert st == 200 and c.api("GET", "/api/vcenter/vm?hosts=" + dst)[1][0]["vm"] == vm
    folder = os.path.join(c.dir, "hosts", "esx-%d" % idx[dst], "local", vms[0]["name"])
    lease = os.path.join(folder, vms[0]["name"] + ".lck")
    with open(lease) as f:
        assert "state=held" in f.read()
    wait_for(lambda: not os.path.exists(os.path.dirname(serial)), 20, "the old folder removed")
    st, p = c.api("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    st, js = c.api("POST", "/api/kvc/vm/%s/console" % vm, {"data": "after the datastore\n"})
    assert st == 200, js
    wait_for(lambda: "KVC-GUEST: console: after the datastore" in console(c, vm)["data"], 20,
             "the guest echoes on its new datastore")
    with open(os.path.join(folder, "serial.log")) as f:
        assert "KVC-GUEST: ready" not in f.read()      # the same guest, not a new boot


# ---- the disk over the migration stream (docs/storage-migration.md) -------
#
# Each host of a kvcenter-up cluster has a local datastore, local-esx-N,
# that no other host sees.  A VM on host 0's runs the test guest's disk loop
# (workload disk-loop: write and verify a pattern over the first 4 MiB of
# its disk, pass after pass) and moves, live, to host 1 and local-esx-1:
# its disk files travel over the vmx-to-vmx stream with its memory.

DISK_TEST_MB = 4                # the guest's default disk_mb
FILL_OFF = 64 << 20             # data beyond the guest's test area, so the
FILL_MB = 512                   # disk takes seconds at the 1 Gb/s default


@pytest.fixture(scope="module")
def cluster_nd():
    with tempfile.TemporaryDirectory(prefix="kvc-vmotion-disk-") as tmp:
        c = Cluster(tmp, 2, 0)
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()


def control(c, index, line):
    """A line to host INDEX's hostd control socket; its answer."""
    return control_line(os.path.join(c.dir, "hosts", "esx-%d" % index, "state", "control.sock"), line)


def vm_files(c, vm):
    """(datastore id, config path) of VM in vpxd's inventory."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(c.dir, "vpxd", "vpxd.db"), uri=True,
                         timeout=10)
    try:
        return db.execute("SELECT datastore, config_path FROM vm WHERE id = ?", (vm,)).fetchone()
    finally:
        db.close()


def local_dir(c, index, name):
    return os.path.join(c.dir, "hosts", "esx-%d" % index, "local", name)


def id_of(c, kind, name):
    st, rows = c.api("GET", "/api/vcenter/%s?names=%s" % (kind, name.replace(" ", "%20")))
    assert st == 200 and rows, (kind, name, rows)
    return rows[0][kind]


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("ascii", "replace")
    except OSError as e:
        return str(e)


def serial_of(folder):
    try:
        with open(os.path.join(folder, "serial.log"), "rb") as f:
            return f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return ""


def loop_passes(text):
    import re
    return [int(p) for p in re.findall(r"KVC-GUEST: disk loop pass=(\d+) seed=\d+\n", text)]


def bad_verifies(text):
    import re
    return [l for l in re.findall(r"KVC-GUEST: disk verify sectors=\d+ bad=\d+ errors=\d+[^\n]*\n",
                                  text) if " bad=0 errors=0 " not in l]


def make_disk_vm(c, name, hosts, with_fill):
    ds0 = id_of(c, "datastore", "local-esx-0")
    net = id_of(c, "network", "VM Network")
    st, vm = c.api("POST", "/api/vcenter/vm", {
        "name": name, "guest_OS": "OTHER_LINUX_64",
        "placement": {"host": hosts[0], "datastore": ds0},
        "cpu": {"count": 1}, "memory": {"size_MiB": 64},
        "disks": [{"new_vmdk": {"capacity": 1 << 30}}],
        "nics": [{"backing": {"type": "STANDARD_PORTGROUP", "network": net}}]})
    assert st in (200, 201), vm
    folder = local_dir(c, 0, name)
    img = os.path.join(folder, name + ".img")
    assert os.path.getsize(img) == 1 << 30
    if with_fill:
        # Data the guest never touches: the disk copy has that much to move.
        with open(img, "r+b") as f:
            f.seek(FILL_OFF)
            chunk = b"\x5a" * (1 << 20)
            for _ in range(FILL_MB):
                f.write(chunk)
    assert control(c, 0, "host 0 vm %s workload disk-loop" % name) == "OK"
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=start" % vm)
    assert st == 204, js
    wait_for(lambda: len(loop_passes(serial_of(folder))) >= 2, 60, "the guest's disk loop")
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm)[1]["run_state"]
             == "RUNNING", 30, "tools RUNNING")
    return vm, folder


def vmx_count(c):
    leaders = [int(l.split()[1]) for l in c.get("HOST")]
    return sum([x for _, x in group_members(pg)].count("vmx") for pg in leaders)


def test_disk_migration_refusals(cluster_nd):
    c = cluster_nd
    hosts = [l.split()[0] for l in c.get("HOST")]
    ds0 = id_of(c, "datastore", "local-esx-0")
    ds1 = id_of(c, "datastore", "local-esx-1")
    st, vm = c.api("POST", "/api/vcenter/vm", {
        "name": "dm-off", "guest_OS": "OTHER_LINUX_64",
        "placement": {"host": hosts[0], "datastore": ds0},
        "cpu": {"count": 1}, "memory": {"size_MiB": 64},
        "disks": [{"new_vmdk": {"capacity": 16 << 20}}]})
    assert st in (200, 201), vm
    # A destination that does not mount the datastore (here the VM's own).
    st, js = c.api("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                   {"placement": {"host": hosts[1], "datastore": ds0}})
    assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", js
    assert "host %s does not see" % hosts[1] in js["messages"][0]["default_message"], js
    # The disk moves over the stream of a live migration only.
    st, js = c.api("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                   {"placement": {"host": hosts[1], "datastore": ds1}})
    assert st == 400 and js["error_type"] == "UNSUPPORTED", js
    assert "not powered on" in js["messages"][0]["default_message"], js
    assert vm_files(c, vm)[0] == ds0
    assert os.path.isdir(local_dir(c, 0, "dm-off"))
    assert not os.path.exists(local_dir(c, 1, "dm-off"))
    # A workload keyword hostd does not know is refused.
    assert control(c, 0, "host 0 vm dm-off workload dance").startswith("ERR")
    st, js = c.api("DELETE", "/api/vcenter/vm/%s" % vm)
    assert st in (200, 204), js


def test_disk_migration_cancel_leaves_the_vm_on_its_source(cluster_nd):
    c = cluster_nd
    hosts = [l.split()[0] for l in c.get("HOST")]
    ds0 = id_of(c, "datastore", "local-esx-0")
    ds1 = id_of(c, "datastore", "local-esx-1")
    vm, folder = make_disk_vm(c, "dm-cancel", hosts, with_fill=True)
    before = sorted(os.listdir(folder))
    dest = local_dir(c, 1, "dm-cancel")
    st, tid = c.api("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % vm,
                    {"placement": {"host": hosts[1], "datastore": ds1}})
    assert st == 202, tid

    def copying():
        st, t = c.api("GET", "/api/cis/tasks/" + tid)
        assert t["status"] in ("PENDING", "RUNNING"), t
        msg = t.get("progress", {}).get("message", {}).get("default_message", "")
        return os.path.isdir(dest) and "copying the disk" in msg
    wait_for(copying, 30, "the disk copy under way")
    st, js = c.api("POST", "/api/cis/tasks/%s?action=cancel" % tid)
    assert st == 204, js

    def ended():
        st, t = c.api("GET", "/api/cis/tasks/" + tid)
        return t if t["status"] in ("SUCCEEDED", "FAILED") else None
    t = wait_for(ended, 60, "the cancelled task")
    assert t["status"] == "FAILED" and "cancel" in str(t["error"]).lower(), t

    # The VM runs on host 0 from its folder there, once; host 1 keeps nothing.
    wait_for(lambda: not os.path.exists(dest), 30, "the destination's folder removed")
    wait_for(lambda: vmx_count(c) == 1, 20, "one vmx")
    wait_for(lambda: vmx_hosts(c, None) == [hosts[0]], 20, "the vmx on host 0")
    st, on0 = c.api("GET", "/api/vcenter/vm?hosts=" + hosts[0])
    st, on1 = c.api("GET", "/api/vcenter/vm?hosts=" + hosts[1])
    assert vm in [v["vm"] for v in on0] and vm not in [v["vm"] for v in on1]
    st, p = c.api("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    assert vm_files(c, vm)[0] == ds0
    assert sorted(os.listdir(folder)) == before
    # The same guest goes on: no reboot, its loop continues and verifies.
    n = max(loop_passes(serial_of(folder)))
    wait_for(lambda: max(loop_passes(serial_of(folder))) >= n + 2, 60,
             "more disk passes after the cancel")
    text = serial_of(folder)
    assert text.count("KVC-GUEST: ready") == 1
    assert bad_verifies(text) == []
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st == 204, js
    st, js = c.api("DELETE", "/api/vcenter/vm/%s" % vm)
    assert st in (200, 204), js


def test_disk_migration_destination_vmx_killed(cluster_nd):
    """The destination's vmx dies (SIGKILL) during the disk copy: the VM runs
    on on host 0, once, and host 1's folder for it is removed."""
    import signal
    c = cluster_nd
    hosts = [l.split()[0] for l in c.get("HOST")]
    ds0 = id_of(c, "datastore", "local-esx-0")
    ds1 = id_of(c, "datastore", "local-esx-1")
    vm, folder = make_disk_vm(c, "dm-kill", hosts, with_fill=True)
    before = sorted(os.listdir(folder))
    dest = local_dir(c, 1, "dm-kill")
    leader1 = int(c.get("HOST")[1].split()[1])
    st, tid = c.api("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % vm,
                    {"placement": {"host": hosts[1], "datastore": ds1}})
    assert st == 202, tid

    def copying():
        st, t = c.api("GET", "/api/cis/tasks/" + tid)
        assert t["status"] in ("PENDING", "RUNNING"), t
        msg = t.get("progress", {}).get("message", {}).get("default_message", "")
        vmx = [pid for pid, comm in group_members(leader1) if comm == "vmx"]
        return vmx if os.path.isdir(dest) and "copying the disk" in msg else None
    pid, = wait_for(copying, 30, "the disk copy under way")
    os.kill(pid, signal.SIGKILL)

    def ended():
        st, t = c.api("GET", "/api/cis/tasks/" + tid)
        return t if t["status"] in ("SUCCEEDED", "FAILED") else None
    t = wait_for(ended, 60, "the failed task")
    assert t["status"] == "FAILED", t
    wait_for(lambda: not os.path.exists(dest), 30, "the destination's folder removed")
    wait_for(lambda: vmx_count(c) == 1 and vmx_hosts(c, None) == [hosts[0]], 20,
             "one vmx, on host 0")
    st, on1 = c.api("GET", "/api/vcenter/vm?hosts=" + hosts[1])
    assert vm not in [v["vm"] for v in on1]
    st, p = c.api("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    assert vm_files(c, vm)[0] == ds0
    assert sorted(os.listdir(folder)) == before
    n = max(loop_passes(serial_of(folder)))
    wait_for(lambda: max(loop_passes(serial_of(folder))) >= n + 2, 60,
             "more disk passes on host 0")
    text = serial_of(folder)
    assert text.count("KVC-GUEST: ready") == 1 and bad_verifies(text) == []
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st == 204, js
    st, js = c.api("DELETE", "/api/vcenter/vm/%s" % vm)
    assert st in (200, 204), js


def test_live_migration_carries_the_disk(cluster_nd):
    c = cluster_nd
    hosts = [l.split()[0] for l in c.get("HOST")]
    ds1 = id_of(c, "datastore", "local-esx-1")
    vm, folder = make_disk_vm(c, "dm", hosts, with_fill=False)
    st, info = c.api("GET", "/api/vcenter/vm/%s" % vm)
    uuid = info["identity"]["instance_uuid"]
    assert 'portgroup="VM Network"' in port_on(c, 0, uuid)
    dest = local_dir(c, 1, "dm")
    n = max(loop_passes(serial_of(folder)))

    st, tid = c.api("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % vm,
                    {"placement": {"host": hosts[1], "datastore": ds1}})
    assert st == 202, tid

    def done():
        st, t = c.api("GET", "/api/cis/tasks/" + tid)
        return t if t["status"] in ("SUCCEEDED", "FAILED") else None
    t = wait_for(done, 120, "the relocate task")
    assert t["status"] == "SUCCEEDED", t

    # One copy, on host 1, from its new folder on local-esx-1.
    st, on1 = c.api("GET", "/api/vcenter/vm?hosts=" + hosts[1])
    st, on0 = c.api("GET", "/api/vcenter/vm?hosts=" + hosts[0])
    assert [v["vm"] for v in on1] == [vm] and on0 == []
    ds, cfg = vm_files(c, vm)
    assert ds == ds1 and cfg == "[local-esx-1] dm/dm.vmx", (ds, cfg)
    try:
        wait_for(lambda: vmx_hosts(c, None) == [hosts[1]], 20, "the vmx only on host 1")
    except TimeoutError:
        raise AssertionError("vmx on %s (hosts %s); host 1's hostd log:\n%s\nits vmx log:\n%s"
                             % (vmx_hosts(c, None), hosts,
                                tail(os.path.join(c.dir, "hosts", "esx-1", "hostd.log")),
                                tail(os.path.join(dest, "vmware.log"))))
    assert vmx_count(c) == 1
    st, p = c.api("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    wait_for(lambda: not os.path.exists(folder), 30, "host 0's folder removed")
    st, ev = c.api("GET", "/api/kvc/events?object=%s" % vm)
    assert any(e.get("type") == "VmMigratedEvent" for e in ev), ev

    # The same guest: no reboot (no "ready" in the new vmx's serial log),
    # its loop goes on from where it was and every pass verifies.
    wait_for(lambda: loop_passes(serial_of(dest)) and
             max(loop_passes(serial_of(dest))) >= n + 3, 60, "disk passes on host 1")
    text = serial_of(dest)
    assert "KVC-GUEST: ready" not in text
    assert min(loop_passes(text)) > n
    assert bad_verifies(text) == []
    wait_for(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm)[1]["run_state"]
             == "RUNNING", 30, "tools RUNNING on host 1")

    # Its adapter moved with it, and it answers on its console.
    wait_for(lambda: 'portgroup="VM Network"' in port_on(c, 1, uuid), 10,
             "the port on host 1's vSwitch")
    wait_for(lambda: port_on(c, 0, uuid) == "", 10, "no port left on host 0")
    st, js = c.api("POST", "/api/kvc/vm/%s/console" % vm, {"data": "after disk vmotion\n"})
    assert st == 200, js
    wait_for(lambda: "KVC-GUEST: console: after disk vmotion" in console(c, vm)["data"], 20,
             "the migrated guest echoes typed input")

    # The files on local-esx-1 hold the disk: after a power-off, the guest's
    # test area holds its pattern of the last passes.
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st == 204, js
    seeds = [int(s) for s in __import__("re").findall(r"disk loop pass=\d+ seed=(\d+)",
                                                       serial_of(dest))]
    last = max(seeds)
    img = os.path.join(dest, "dm.img")
    assert os.path.getsize(img) == 1 << 30
    from test_vmx_disk_move import sector_bytes
    with open(img, "rb") as f:
        for sector in range(0, DISK_TEST_MB * 2048, 97):
            f.seek(sector * 512)
            data = f.read(512)
            assert data in (sector_bytes(last, sector), sector_bytes(last + 1, sector)), sector
