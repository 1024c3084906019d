"""Storage migration through vpxd with sim hosts: relocate with
placement.datastore moves a running VM's folder to another datastore of its
host (task, progress, data kept, old folder removed, the inventory's
datastore follows, the VM keeps running and its lease lives in the new
folder), or with placement.host too, moves the files and then migrates the
VM live; refusals say why and change nothing.  (kvm hosts: a running kvm
VM's folder move is refused by hostd, see docs/storage-migration.md; vmx's
own disk move is tested in test_vmx_disk_move.py.)"""
import os
import sqlite3

import pytest

from kvctest import wait_for
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
    from kvctest import binpath
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    for p in ("vmkernel-kvm/vmkd", "tests/integration/test_vmkd_fake_vmx"):
        if not os.path.exists(binpath(p)):
            return "%s is not built in this tree" % p
    return None


@pytest.mark.skipif(kvm_skip_reason() is not None, reason=kvm_skip_reason() or "")
def test_kvm_host_moves_a_powered_off_vm_and_refuses_a_running_one(env):
    from hostd_util import Hostd
    from kvctest import binpath
    from test_hostd_kvm import Vmkd
    fake_vmx = binpath("tests/integration/test_vmkd_fake_vmx")
    vmkd_dir = os.path.join(env.tmp, "vmkd-svm")
    os.makedirs(vmkd_dir)
    vk = Vmkd(vmkd_dir)
    try:
        k1, k2 = os.path.join(env.tmp, "kds1"), os.path.join(env.tmp, "kds2")
        hd = Hostd(env.tmp, name="svmkvm", backend="kvm",
                   datastores=["kds1=%s:shared" % k1, "kds2=%s:shared" % k2],
                   extra=["--vmkd-socket", vk.sock, "--guest-image", fake_vmx])
        env.hostds.append(hd)
        host, = env.add_hosts(hd, env.host_folder)
        d1, d2 = env.datastore("kds1"), env.datastore("kds2")
        paths = {d1: k1, d2: k2}
        vm = env.create_vm("svk1", host, mib=64)
        src = vm_datastore(env, vm)
        dst = d2 if src == d1 else d1
        old, new = os.path.join(paths[src], "svk1"), os.path.join(paths[dst], "svk1")
        with open(os.path.join(old, "data.bin"), "wb") as f:
            f.write(b"kvm" * 100000)
        st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                            {"placement": {"datastore": dst}})
        assert st == 204, js
        assert vm_datastore(env, vm) == dst
        assert not os.path.exists(old)
        with open(os.path.join(new, "data.bin"), "rb") as f:
            assert f.read() == b"kvm" * 100000
        # it powers on from the new folder; moving it running is refused
        env.power_on(vm)
        st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vm,
                            {"placement": {"datastore": src}})
        msg = check_error(st, js, 400, "UNSUPPORTED")
        assert "power it off first" in msg, msg
        assert vm_datastore(env, vm) == dst and os.path.isdir(new) and not os.path.exists(old)
        st, p, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
        assert p["state"] == "POWERED_ON"
        st, js, _ = env.req("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
        assert st == 204, js
    finally:
        vk.stop()


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
