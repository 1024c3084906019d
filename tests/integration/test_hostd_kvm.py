"""hostd's kvm backend on a real vmkd (vmx is vmkd's test double, or the
real vmx where it is built and /dev/kvm works): power through vmkd, VMs that
outlive a hostd restart, a vmx crash seen as a power-off.  Needs root
(vmkd uses cgroups)."""
import os
import re
import tempfile
import uuid

import pytest

from hostd_util import Driver, Hostd, rpc_missing_reason
from kvctest import Daemon, binpath, processes, wait_for

VMKD = binpath("vmkernel-kvm/vmkd")
FAKE_VMX = binpath("tests/integration/test_vmkd_fake_vmx")


def skip_reason():
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    if not os.path.exists(VMKD) or not os.path.exists(FAKE_VMX):
        return "vmkd is not built in this tree"
    return rpc_missing_reason()


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


class Vmkd:
    def __init__(self, tmp):
        self.sock = os.path.join(tmp, "vmkd.sock")
        conf = os.path.join(tmp, "vmkd.conf")
        with open(conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\n'
                    'ready-timeout = 20s\nstop-timeout = 5s\nstop-vms-on-exit = true\n'
                    '[cgroup]\nparent = "kvcenter-hostdtest-%d"\nremove-parent-on-exit = true\n'
                    % (os.path.join(tmp, "vmkd-state"), self.sock, FAKE_VMX, os.getpid()))
        self.d = Daemon([VMKD, "-f", conf])
        self.d.wait_log(r"vmkd ready", timeout=15)

    def stop(self):
        return self.d.stop()


@pytest.fixture
def env():
    with tempfile.TemporaryDirectory(prefix="kvc-hostd-kvm-") as tmp:
        v = Vmkd(tmp)
        drv = Driver(tmp)
        try:
            yield tmp, v, drv
        finally:
            drv.stop()
            v.stop()


def kvm_hostd(tmp, sock, state=None, port=None):
    extra = ["--vmkd-socket", sock, "--guest-image", FAKE_VMX]
    if port:
        extra += ["--port", str(port)]
    return Hostd(tmp, extra=extra, state=state, backend="kvm")


def vmx_pids(tmp):
    """Processes of the vmx double running for this test's vmkd."""
    return [pid for pid, argv in processes()
            if argv[0].endswith(b"test_vmkd_fake_vmx") and tmp.encode() in b" ".join(argv)]


def test_power_through_vmkd_and_restart_keeps_vm(env):
    tmp, v, drv = env
    h = kvm_hostd(tmp, v.sock)
    try:
        host = h.hosts[0]
        hid = drv.add(host)
        u = str(uuid.uuid4())
        drv.ok("create %s %s k1 shared" % (hid, u))
        r = drv.ok("power %s %s on" % (hid, u))
        assert "power=POWERED_ON" in r
        wait_for(lambda: len(vmx_pids(tmp)) == 1, 10, "one vmx")
        pid = vmx_pids(tmp)[0]
        assert os.path.exists(os.path.join(tmp, "shared", "k1", "k1.vmx-run"))
    except BaseException:
        h.stop()                # a failure here must not leave hostd running
        raise
    # hostd dies; the VM does not.
    h.kill9()
    drv.wait_state(hid, "not_responding")
    assert vmx_pids(tmp) == [pid]
    h2 = kvm_hostd(tmp, v.sock, state=h.state, port=host["port"])
    try:
        assert "VM k1 is running under vmkd" in h2.d.log()
        drv.wait_state(hid, "connected")
        wait_for(lambda: drv.dbvms(hid).get(u, ("",))[0] == "POWERED_ON", 10, "still on")
        assert vmx_pids(tmp) == [pid]
        r = drv.call("power %s %s on" % (hid, u))
        assert r.startswith("ERR 114"), r
        r = drv.call("power %s %s suspend" % (hid, u))
        assert r.startswith("ERR"), r         # the vmx double has no control socket
        drv.ok("power %s %s off" % (hid, u))
        wait_for(lambda: vmx_pids(tmp) == [], 10, "vmx gone")
        assert drv.dbvms(hid)[u][0] == "POWERED_OFF"
        drv.ok("delete %s %s" % (hid, u))
    finally:
        h2.stop()


def test_vmx_crash_is_a_power_off(env):
    tmp, v, drv = env
    h = kvm_hostd(tmp, v.sock)
    try:
        hid = drv.add(h.hosts[0])
        u = str(uuid.uuid4())
        drv.ok("create %s %s boom shared crash" % (hid, u))
        m = drv.mark()
        drv.call("power %s %s on" % (hid, u))
        drv.wait_event(r"^vm %s %s POWERED_OFF" % (hid, u), since=m)
        wait_for(lambda: drv.dbvms(hid).get(u, ("",))[0] == "POWERED_OFF", 10, "db off")
        assert re.search(r"VM boom stopped: (vmx crashed|powered off)", h.d.log())
    finally:
        h.stop()
