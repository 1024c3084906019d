"""Storage migration through vpxd with sim hosts: relocate with
placement.datastore moves a running VM's folder to another datastore of its
host (task, progress, data kept, old folder removed, the inventory's
datastore follows, the VM keeps running and its lease lives in the new
folder), or with placement.host too, moves the files and then migrates the
VM live; refusals say why and change nothing.  On a kvm host with the real
vmx, a running VM's folder moves with its guest writing and verifying its
disk (task and plain), a cancel during the throttled copy leaves it where it
was, and a hostd killed mid-move resolves the move's journal when it comes
back (rolled back during vmx's copy, forward after it committed)."""
import os
import sqlite3

import pytest

from kvctest import processes, wait_for
from hostd_util import rpc_missing_reason
from drs_util import Env
from test_vpxd_util import check_error

reason = rpc_missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def env():
    e = Env()
    e.cl = e.cluster("C1")
    e.ds2path = os.path.join(e.tmp, "ds2")
    e.a = e.hostd(2, "esxs", datastores=["shared=%s:shared" % e.shared,
                                         "ds2=%s:shared" % e.ds2path])
    e.hosts = e.add_hosts(e.a, e.cl)
    e.ds1 = e.datastore("shared")
    e.ds2 = e.datastore("ds2")
    e.paths = {e.ds1: e.shared, e.ds2: e.ds2path}
    yield e
    assert e.close() == 0


def vm_datastore(env, vm):
    db = sqlite3.connect("file:%s?mode=ro" % env.vx.db_path, uri=True, timeout=10)
    try:
        row = db.execute("SELECT datastore FROM vm WHERE id = ?", (vm,)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def other(env, ds):
    return env.ds2 if ds == env.ds1 else env.ds1


def test_storage_only_move_of_a_running_vm(env):
    h0 = env.hosts[0]
    vm = env.create_vm("svm1", h0)
    env.power_on(vm)
    src = vm_datastore(env, vm)
    dst = other(env, src)
    old = os.path.join(env.paths[src], "svm1")
    new = os.path.join(env.paths[dst], "svm1")
    assert os.path.isdir(old) and not os.path.exists(new)
    payload = os.urandom(3 << 20) + b"\0" * (1 << 20) + b"tail"
    with open(os.path.join(old, "data.bin"), "wb") as f:
        f.write(payload)
    wait_for(lambda: os.path.exists(os.path.join(old, "svm1.lck")), 10, "the VM's lease")

    st, tid, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % vm,
                         {"placement": {"datastore": dst}})
    assert st == 202, tid
    t = env.wait_task(tid, 30)
    assert t["status"] == "SUCCEEDED", t
    assert t["operation"] == "relocate" and t["target"]["id"] == vm
    # the inventory, the files, the data
    assert vm_datastore(env, vm) == dst
    assert not os.path.exists(old), os.listdir(old)
    assert os.path.exists(os.path.join(new, "svm1.vmx"))
    with open(os.path.join(new, "data.bin"), "rb") as f:
        assert f.read() == payload
    with open(os.path.join(new, "svm1.vmx")) as f:
        assert "ds2" in f.read() or dst == env.ds1
    # still running, still one VM, on its host
    st, p, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    assert env.vms_on(h0, "svm1") == [vm] and env.copies("svm1") == 1
    # its lease is renewed in the new folder (and the old one is not back)
    lck = os.path.join(new, "svm1.lck")
    with open(lck, "rb") as f:
        first = f.read()
    wait_for(lambda: open(lck, "rb").read() != first, 15, "lease renewal in the new folder")
    assert not os.path.exists(old)

    # and back, without a task: answered when done
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": src}})
    assert st == 204, js
    assert vm_datastore(env, vm) == src
    assert os.path.exists(os.path.join(old, "data.bin")) and not os.path.exists(new)
    # the VM's own datastore and host: nothing to do
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": src, "host": h0}})
    check_error(st, js, 400, "ALREADY_IN_DESIRED_STATE")


def test_move_files_then_host(env):
    h0, h1 = env.hosts
    vm = env.create_vm("svm2", h0)
    env.power_on(vm)
    src = vm_datastore(env, vm)
    dst = other(env, src)
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": dst, "host": h1}})
    assert st == 204, js
    assert vm_datastore(env, vm) == dst
    assert env.vms_on(h1, "svm2") == [vm] and env.vms_on(h0, "svm2") == []
    assert env.copies("svm2") == 1
    assert not os.path.exists(os.path.join(env.paths[src], "svm2"))
    assert os.path.exists(os.path.join(env.paths[dst], "svm2", "svm2.vmx"))
    st, p, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    assert env.events("VmMigratedEvent", vm)


def test_refusals_say_why_and_change_nothing(env):
    h0 = env.hosts[0]
    vm = env.create_vm("svm3", h0)
    env.power_on(vm)
    src = vm_datastore(env, vm)
    dst = other(env, src)
    folder = os.path.join(env.paths[src], "svm3")
    before = sorted(os.listdir(folder))
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": "datastore-99999"}})
    check_error(st, js, 404, "NOT_FOUND")
    # a datastore this host does not mount; a host that does not see the target
    lone = env.hostd(1, "esxl", datastores=["local=%s/local" % env.tmp])
    lh, = env.add_hosts(lone, env.host_folder)
    local = env.datastore("local")
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": local}})
    msg = check_error(st, js, 400, "INVALID_ARGUMENT")
    assert "not mounted on host" in msg, msg
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": dst, "host": lh}})
    msg = check_error(st, js, 400, "INVALID_ARGUMENT")
    assert "does not see datastore" in msg, msg
    # the disk over the migration stream: not on sim hosts
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": local, "host": lh}})
    msg = check_error(st, js, 400, "UNSUPPORTED")
    assert "needs the kvm backend" in msg, msg
    assert not os.path.exists(os.path.join(env.tmp, "local", "svm3"))
    # a folder of that name on the target: the host refuses, nothing moves
    squat = os.path.join(env.paths[dst], "svm3")
    os.makedirs(squat)
    with open(os.path.join(squat, "mine"), "w") as f:
        f.write("x")
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                        {"placement": {"datastore": dst}})
    msg = check_error(st, js, 400, "NOT_ALLOWED_IN_CURRENT_STATE")
    assert "exists already" in msg, msg
    assert os.listdir(squat) == ["mine"]
    assert vm_datastore(env, vm) == src
    assert sorted(os.listdir(folder)) == before
    st, p, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"


def kvm_skip_reason():
    from kvctest import binpath, kvm_usable
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    for p in ("vmkernel-kvm/vmkd", "vmkernel-kvm/vmx", "vmkernel-kvm/guest/kvc-guest.elf"):
        if not os.path.exists(binpath(p)):
            return "%s is not built in this tree" % p
    ok, why = kvm_usable()
    if not ok:
        return why or "no usable /dev/kvm"
    return None


KVM_BW = 524288         # the kvm host's default copy speed: 4 MiB of guest data in ~8 s


class KvmHost:
    """A kvm host of ENV: its own vmkd running the real vmx, hostd with two
    datastores of its own (kds1, kds2), copies slowed to KVM_BW."""

    def __init__(self, env):
        from kvctest import Daemon, binpath
        self.env = env
        self.dir = os.path.join(env.tmp, "kvmhost")
        os.makedirs(self.dir)
        self.vsock = os.path.join(self.dir, "vmkd.sock")
        conf = os.path.join(self.dir, "vmkd.conf")
        with open(conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\n'
                    'ready-timeout = 30s\nstop-timeout = 5s\nstop-vms-on-exit = true\n'
                    '[cgroup]\nparent = "kvcenter-svmtest-%d"\nremove-parent-on-exit = true\n'
                    % (os.path.join(self.dir, "vmkd-state"), self.vsock,
                       binpath("vmkernel-kvm/vmx"), os.getpid()))
        self.vmkd = Daemon([binpath("vmkernel-kvm/vmkd"), "-f", conf])
        self.vmkd.wait_log(r"vmkd ready", timeout=15)
        self.k1, self.k2 = os.path.join(self.dir, "kds1"), os.path.join(self.dir, "kds2")
        self.hd = None
        self.start()
        self.host, = env.add_hosts(self.hd, env.host_folder)
        self.d1, self.d2 = env.datastore("kds1"), env.datastore("kds2")
        self.paths = {self.d1: self.k1, self.d2: self.k2}

    def start(self, port=None, fault=None):
        from hostd_util import Hostd
        from kvctest import binpath
        state = self.hd.state if self.hd else None
        extra = ["--vmkd-socket", self.vsock, "--guest-image",
                 binpath("vmkernel-kvm/guest/kvc-guest.elf"), "--lease-ms", "1000"]
        if port:
            extra += ["--port", str(port)]
        envs = ["env", "KVC_HOSTD_SVM_BANDWIDTH=%d" % KVM_BW]
        if fault:
            envs.append("KVC_HOSTD_FAULT=" + fault)
        self.hd = Hostd(self.dir, name="svmkvm", backend="kvm", state=state, prefix=envs,
                        datastores=["kds1=%s:shared" % self.k1, "kds2=%s:shared" % self.k2],
                        extra=extra)
        self.env.hostds.append(self.hd)

    def kill9_and_restart(self):
        port = self.hd.hosts[0]["port"]
        self.hd.kill9()
        self.env.hostds.remove(self.hd)
        self.start(port=port)

    def connected(self):
        st, l, _ = self.env.req("GET", "/api/vcenter/host")
        return any(h["host"] == self.host and h["connection_state"] == "CONNECTED" for h in l)

    def stop(self):
        self.vmkd.stop()


@pytest.fixture(scope="module")
def kvm(env):
    r = kvm_skip_reason()
    if r:
        pytest.skip(r)
    k = KvmHost(env)
    yield k
    k.stop()


class Guest:
    """A running kvm VM whose test guest writes and verifies its disk pass
    after pass (workload disk-loop); its serial log is in its folder."""

    def __init__(self, env, k, name):
        self.env, self.k, self.name = env, k, name
        st, self.vm, _ = env.req("POST", "/api/vcenter/vm", {
            "guest_OS": "OTHER_LINUX_64", "name": name,
            "placement": {"folder": env.vm_folder, "host": k.host},
            "memory": {"size_MiB": 32}, "disks": [{"new_vmdk": {"capacity": 16 << 20}}]})
        assert st == 201, self.vm
        assert k.hd.control("host 0 vm %s workload disk-loop" % name) == "OK"
        env.power_on(self.vm)
        self.wait_passes(0)
        assert self.readies() == 1

    def ds(self):
        return vm_datastore(self.env, self.vm)

    def folder(self, ds=None):
        return os.path.join(self.k.paths[ds or self.ds()], self.name)

    def serial(self):
        for ds in self.k.paths:
            p = os.path.join(self.folder(ds), "serial.log")
            try:
                with open(p, "rb") as f:
                    text = f.read().decode("ascii", "replace")
                if os.path.exists(os.path.join(self.folder(ds), self.name + ".img")) or \
                        ds == self.ds():
                    return text
            except FileNotFoundError:
                continue
        return ""

    def passes(self):
        import re
        return [int(x) for x in re.findall(r"disk loop pass=(\d+) seed=\d+\n", self.serial())]

    def wait_passes(self, n, timeout=60):
        return wait_for(lambda: (lambda p: p and p[-1] >= n)(self.passes()), timeout,
                        "%s: guest disk pass %d" % (self.name, n))

    def readies(self):
        return self.serial().count("KVC-GUEST: ready")

    def assert_verified(self):
        import re
        text = self.serial()
        lines = re.findall(r"KVC-GUEST: disk verify [^\n]*\n", text)
        # a line cut short by a power-off runs on into the next boot's
        # first line (the log is appended to): not a verify result
        lines = [l for l in lines if "KVC-GUEST:" not in l[len("KVC-GUEST:"):]]
        assert lines, text[-2000:]
        bad = [l for l in lines if "bad=0 errors=0" not in l]
        assert not bad, bad[:5]

    def running(self):
        st, p, _ = self.env.req("GET", "/api/vcenter/vm/%s/power" % self.vm)
        return p["state"] == "POWERED_ON"

    def lease(self, folder):
        with open(os.path.join(folder, self.name + ".lck")) as f:
            return dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)

    def assert_lease_renewed(self, folder):
        first = self.lease(folder)
        assert first["state"] == "held", first
        wait_for(lambda: int(self.lease(folder)["heartbeat"]) >= int(first["heartbeat"]) + 3, 10,
                 "vmx renewing the lease in %s" % folder)

    def stop(self):
        st, js, _ = self.env.req("POST", "/api/vcenter/vm/%s/power?action=stop" % self.vm)
        assert st == 204, js


def other_kds(k, ds):
    return k.d2 if ds == k.d1 else k.d1


def test_kvm_running_vm_moves_with_its_guest(env, kvm):
    g = Guest(env, kvm, "svk1")
    src = g.ds()
    dst = other_kds(kvm, src)
    old, new = g.folder(src), g.folder(dst)
    with open(os.path.join(old, "notes.bin"), "wb") as f:
        notes = os.urandom(1 << 20)
        f.write(notes)
    g.assert_lease_renewed(old)
    g.wait_passes(g.passes()[-1] + 1)
    serial_before = g.serial()

    st, tid, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % g.vm,
                         {"placement": {"datastore": dst}})
    assert st == 202, tid
    # the copy runs at the host's 512 KiB/s while the guest writes on
    seen = wait_for(lambda: (lambda t: t if t["status"] != "RUNNING" or
                             0 < t["progress"]["completed"] < 100 else None)(env.task(tid)),
                    20, "copy progress", 0.05)
    assert seen["status"] == "RUNNING", seen
    assert os.path.exists(os.path.join(new, "svk1.img.moving"))
    t = env.wait_task(tid, 60)
    assert t["status"] == "SUCCEEDED", t
    # the inventory, the folders
    assert g.ds() == dst
    assert not os.path.exists(old), os.listdir(old)
    names = set(os.listdir(new))
    for n in ("svk1.vmx", "svk1.vmx-run", "svk1.img", "svk1.lck", "serial.log", "vmware.log",
              "notes.bin"):
        assert n in names, names
    assert not [n for n in names if n.endswith((".svmotion", ".moving", ".svmpart"))], names
    with open(os.path.join(new, "notes.bin"), "rb") as f:
        assert f.read() == notes
    with open(os.path.join(new, "svk1.vmx")) as f:
        assert "svk1" in f.read()
    # the same guest runs on (no second boot), its serial log whole, its
    # disk passes verify on the moved disk, its lease renewed in the new folder
    assert g.running()
    assert g.serial().startswith(serial_before) and g.readies() == 1
    g.wait_passes(g.passes()[-1] + 2)
    g.assert_verified()
    g.assert_lease_renewed(new)
    with open(os.path.join(new, "vmware.log")) as f:
        assert "VMX-FOLDER-MOVE" in f.read()

    # and back, without a task: answered when done
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % g.vm,
                        {"placement": {"datastore": src}})
    assert st == 204, js
    assert g.ds() == src and not os.path.exists(new)
    assert os.path.exists(os.path.join(old, "notes.bin"))
    assert g.running() and g.readies() == 1
    g.wait_passes(g.passes()[-1] + 2)
    g.assert_verified()
    g.assert_lease_renewed(old)
    # powered off, its folder moves too (hostd copies it all), and it boots
    # from there
    g.stop()
    wait_for(lambda: not g.running(), 20, "powered off")
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % g.vm,
                        {"placement": {"datastore": dst}})
    assert st == 204, js
    assert g.ds() == dst and not os.path.exists(old)
    with open(os.path.join(new, "notes.bin"), "rb") as f:
        assert f.read() == notes
    size = len(g.serial())
    env.power_on(g.vm)
    wait_for(lambda: "disk loop pass=0 " in g.serial()[size:], 60, "the guest booted from %s" % new)
    g.assert_verified()
    g.assert_lease_renewed(new)
    g.stop()


def test_kvm_cancel_during_the_copy_leaves_the_vm_on_its_source(env, kvm):
    g = Guest(env, kvm, "svk2")
    src = g.ds()
    dst = other_kds(kvm, src)
    old, new = g.folder(src), g.folder(dst)
    st, tid, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % g.vm,
                         {"placement": {"datastore": dst}})
    assert st == 202, tid
    t = wait_for(lambda: (lambda t: t if t["progress"]["completed"] > 0 else None)(env.task(tid)),
                 20, "copy progress", 0.05)
    assert t["status"] == "RUNNING" and t["cancelable"], t
    assert os.path.exists(os.path.join(new, "svk2.img.moving"))
    st, js, _ = env.req("POST", "/api/cis/tasks/%s?action=cancel" % tid)
    assert st == 204, js
    t = env.wait_task(tid, 20)
    assert t["status"] == "FAILED" and "cancel" in str(t["error"]).lower(), t
    assert g.ds() == src
    assert not os.path.exists(new)
    assert os.path.exists(os.path.join(old, "svk2.img"))
    assert not os.path.exists(os.path.join(old, "svk2.svmotion"))
    assert g.running() and g.readies() == 1
    g.wait_passes(g.passes()[-1] + 2)
    g.assert_verified()
    g.assert_lease_renewed(old)
    g.stop()


def vmx_pids(folder):
    """PIDs of the vmx processes whose command line names FOLDER."""
    return [pid for pid, argv in processes()
            if argv[0].endswith(b"/vmx") and any(folder.encode() in a for a in argv)]


def test_kvm_vmx_killed_mid_move_leaves_the_vm_off_on_its_source(env, kvm):
    import signal
    g = Guest(env, kvm, "svk4")
    src = g.ds()
    dst = other_kds(kvm, src)
    old, new = g.folder(src), g.folder(dst)
    st, tid, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % g.vm,
                         {"placement": {"datastore": dst}})
    assert st == 202, tid
    wait_for(lambda: env.task(tid)["progress"]["completed"] > 0, 20, "copy progress", 0.05)
    pids = vmx_pids(old)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    t = env.wait_task(tid, 30)
    assert t["status"] == "FAILED", t
    # nothing runs it: the inventory says so, the files stay where they were
    wait_for(lambda: not g.running(), 20, "the VM to show powered off")
    assert g.ds() == src
    assert os.path.exists(os.path.join(old, "svk4.img"))
    assert not os.path.exists(new)
    assert not vmx_pids(old)
    # and it powers on again from its folder
    env.power_on(g.vm)
    wait_for(lambda: g.readies() == 2, 30, "the guest to boot again")
    g.wait_passes(g.passes()[-1] + 1)
    g.stop()


def test_kvm_hostd_killed_mid_move_rolls_back_or_forward(env, kvm):
    g = Guest(env, kvm, "svk3")
    src = g.ds()
    dst = other_kds(kvm, src)
    old, new = g.folder(src), g.folder(dst)

    def start_move():
        st, tid, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % g.vm,
                             {"placement": {"datastore": dst}})
        assert st == 202, tid
        wait_for(lambda: env.task(tid)["progress"]["completed"] > 0, 20, "copy progress", 0.05)
        assert os.path.exists(os.path.join(old, "svk3.svmotion"))
        assert os.path.exists(os.path.join(new, "svk3.img.moving"))
        return tid

    # 1. hostd dies during the copy and comes back at once, while vmx still
    #    copies: the move is undone (vmx's copy stopped, the target removed)
    tid = start_move()
    kvm.kill9_and_restart()
    assert "STORAGE-MOVE-RECOVER vm=" in kvm.hd.d.log() and "rolled back" in kvm.hd.d.log(), \
        kvm.hd.d.log()[-3000:]
    assert not os.path.exists(new)
    assert not os.path.exists(os.path.join(old, "svk3.svmotion"))
    assert os.path.exists(os.path.join(old, "svk3.img"))
    wait_for(lambda: env.task(tid)["status"] == "FAILED", 20, "the task to fail")
    wait_for(kvm.connected, 20, "the host reconnected")
    assert g.ds() == src and g.readies() == 1
    g.wait_passes(g.passes()[-1] + 1)
    g.assert_verified()
    g.assert_lease_renewed(old)

    # 2. hostd dies during the copy and comes back after vmx's copy
    #    committed (the disk is in the target, no marker): the move is
    #    finished (vmx's folder, the other files, the registry)
    tid = start_move()
    port = kvm.hd.hosts[0]["port"]
    kvm.hd.kill9()
    env.hostds.remove(kvm.hd)
    wait_for(lambda: not os.path.exists(os.path.join(new, "svk3.img.moving")) and
             not os.path.exists(os.path.join(old, "svk3.img")), 60, "vmx's copy to commit")
    assert os.path.exists(os.path.join(new, "svk3.img"))
    kvm.start(port=port)
    log = kvm.hd.d.log()
    assert "rolled forward" in log and "vmx moved its folder to %s" % new in log, log[-3000:]
    assert not os.path.exists(old)
    names = set(os.listdir(new))
    assert {"svk3.vmx", "svk3.img", "svk3.lck", "serial.log"} <= names, names
    assert "svk3.svmotion" not in names
    wait_for(lambda: env.task(tid)["status"] == "FAILED", 20, "the task to fail")
    wait_for(kvm.connected, 20, "the host reconnected")
    wait_for(lambda: g.ds() == dst, 20, "the inventory to show the new datastore")
    assert g.running() and g.readies() == 1
    g.wait_passes(g.passes()[-1] + 2)
    g.assert_verified()
    g.assert_lease_renewed(new)
    g.stop()


def test_cancel_leaves_the_vm_where_it_was(env):
    h0 = env.hosts[0]
    # a 20 GB (thin) disk: about 20 s of modelled copy at the host's 1 GB/s
    st, vm, _ = env.req("POST", "/api/vcenter/vm", {
        "guest_OS": "OTHER_LINUX_64", "name": "svm4",
        "placement": {"folder": env.vm_folder, "host": h0},
        "disks": [{"new_vmdk": {"capacity": 20 * 1000 ** 3}}]})
    assert st == 201, vm
    env.power_on(vm)
    src = vm_datastore(env, vm)
    dst = other(env, src)
    st, tid, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate&vmw-task=true" % vm,
                         {"placement": {"datastore": dst}})
    assert st == 202, tid
    t = wait_for(lambda: (lambda t: t if t["progress"]["completed"] > 0 else None)(env.task(tid)),
                 15, "copy progress", 0.05)
    assert t["status"] == "RUNNING" and t["cancelable"], t
    st, js, _ = env.req("POST", "/api/cis/tasks/%s?action=cancel" % tid)
    assert st == 204, js
    t = env.wait_task(tid, 10)
    assert t["status"] == "FAILED" and "cancel" in str(t["error"]).lower(), t
    assert vm_datastore(env, vm) == src
    assert os.path.isdir(os.path.join(env.paths[src], "svm4"))
    assert not os.path.exists(os.path.join(env.paths[dst], "svm4"))
    st, p, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    # stop it: the module shares its hosts
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st == 204, js


def test_vpxd_stopping_answers_a_move_in_progress():
    """SIGTERM while a plain (no task) storage relocate waits for its copy:
    the client gets its answer and vpxd exits 0 (nothing left suspended)."""
    import re
    import threading
    e = Env()
    try:
        ds2path = os.path.join(e.tmp, "ds2")
        hd = e.hostd(1, "esxq", datastores=["shared=%s:shared" % e.shared, "ds2=%s:shared" % ds2path])
        h, = e.add_hosts(hd, e.host_folder)
        e.datastore("shared")
        ds2 = e.datastore("ds2")
        st, vm, _ = e.req("POST", "/api/vcenter/vm", {
            "guest_OS": "OTHER_LINUX_64", "name": "svmq",
            "placement": {"folder": e.vm_folder, "host": h},
            "disks": [{"new_vmdk": {"capacity": 20 * 1000 ** 3}}]})   # ~20 s of modelled copy
        assert st == 201, vm
        e.power_on(vm)
        got = {}

        def relocate():
            got["answer"] = e.vx.request("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                                         {"placement": {"datastore": ds2}}, token=e.token)
        t = threading.Thread(target=relocate)
        t.start()

        def waiting():
            st, text, _ = e.vx.request("GET", "/metrics", token=e.token)
            m = re.search(r"^kvc_vpxd_http_requests_waiting (\d+)$", text, re.M)
            return m and int(m.group(1)) >= 1
        wait_for(waiting, 20, "the relocate to wait for its copy")
        d = e.vx.daemon
        rc = d.stop()
        e.vx.daemon = None
        assert rc == 0, "vpxd did not exit cleanly:\n" + d.log()[-3000:]
        t.join(20)
        assert not t.is_alive()
        st, js, _ = got["answer"]
        msg = check_error(st, js, 500, "CANCELED")
        assert "vpxd is stopping" in msg, msg
    finally:
        e.close()
