"""vMotion of a real guest between two kvm hosts of a kvcenter-up cluster:
vpxd orchestrates both hostds, the destination's vmkd starts vmx --incoming,
the memory streams from the source vmx to the destination vmx over TLS
pinned to the hosts' certificates, and the guest runs on without a reboot
(its console answers, its tools beat) on the destination only."""
import os
import subprocess
import tempfile

import pytest

from kvctest import binpath, wait_for
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


def vmx_hosts(c, leaders):
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
