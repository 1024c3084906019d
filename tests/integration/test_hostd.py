"""hostd against vpxd's host manager and database (sim backend): registration
with thumbprint pinning, heartbeats and "not responding", VM operations,
reconnect reconciliation, restart with VMs running, datastore heartbeats."""
import os
import re
import signal
import tempfile
import uuid

import pytest

from hostd_util import Driver, Hostd, rpc_missing_reason
from kvctest import wait_for

reason = rpc_missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="kvc-hostd-") as d:
        yield d


@pytest.fixture
def drv(tmp):
    d = Driver(tmp)
    yield d
    d.stop()


def new_uuid():
    return str(uuid.uuid4())


def test_probe_then_add_pins_and_heartbeats(tmp, drv):
    h = Hostd(tmp)
    try:
        host = h.hosts[0]
        r = drv.ok("probe 127.0.0.1 %d" % host["port"])
        assert r.split()[1] == host["thumbprint"]
        assert "uuid=%s" % host["uuid"] in r
        hid = drv.add(host)
        assert drv.state(hid) == "connected"
        drv.wait_event(r"^inventory %s gen=\d+ vms=0 ds=1 nets=1" % hid)
        assert drv.ok("dbhost %s" % hid).split()[1] == "CONNECTED"
        # Heartbeats keep coming.
        wait_for(lambda: int(drv.ok("status %s" % hid).split()[2][3:]) >= 5, 10, "5 heartbeats")
        # The host pinned this vpxd's certificate.
        with open(os.path.join(h.state, "vpxd.thumbprint")) as f:
            assert f.read().strip() == drv.thumbprint
    finally:
        h.stop()


def test_wrong_thumbprint_fails_with_the_real_one(tmp, drv):
    h = Hostd(tmp)
    try:
        host = h.hosts[0]
        bad = ":".join(["AB"] * 32)
        r = drv.add_raw(host["port"], bad)
        assert " ERR " in " " + r, r
        assert host["thumbprint"] in r, r
        assert not os.path.exists(os.path.join(h.state, "vpxd.thumbprint"))
    finally:
        h.stop()


def test_admin_password_checked_on_first_contact(tmp, drv):
    h = Hostd(tmp, extra=["--admin-password", "s3cret"])
    try:
        host = h.hosts[0]
        r = drv.add_raw(host["port"], host["thumbprint"], "root", "wrong")
        assert "ERR" in r and "credentials" in r, r
        hid = drv.add(host, "root", "s3cret")
        assert drv.state(hid) == "connected"
    finally:
        h.stop()


def test_killed_hostd_becomes_not_responding_then_reconnects(tmp, drv):
    h = Hostd(tmp)
    host = h.hosts[0]
    hid = drv.add(host)
    h.kill9()
    drv.wait_state(hid, "not_responding")
    assert drv.ok("dbhost %s" % hid).split()[1] == "NOT_RESPONDING"
    # Same state dir and port: vpxd finds it again by itself.
    h2 = Hostd(tmp, extra=["--port", str(host["port"])], state=h.state)
    try:
        drv.wait_state(hid, "connected")
        assert drv.ok("dbhost %s" % hid).split()[1] == "CONNECTED"
    finally:
        h2.stop()


def test_silent_host_is_not_responding(tmp, drv):
    h = Hostd(tmp)
    try:
        hid = drv.add(h.hosts[0])
        assert h.control("host 0 hb stop") == "OK"
        drv.wait_state(hid, "not_responding")
        assert h.control("host 0 hb start") == "OK"
        drv.wait_state(hid, "connected")
    finally:
        h.stop()


def test_vm_lifecycle(tmp, drv):
    h = Hostd(tmp)
    try:
        hid = drv.add(h.hosts[0])
        u = new_uuid()
        r = drv.ok("create %s %s vm1 shared" % (hid, u))
        assert "power=POWERED_OFF" in r and "path=[shared] vm1/vm1.vmx" in r
        vmdir = os.path.join(tmp, "shared", "vm1")
        assert os.path.exists(os.path.join(vmdir, "vm1.vmx"))
        # A retried create (lost reply) does not make a second VM.
        r = drv.call("create %s %s vm1 shared" % (hid, u))
        assert r.startswith("ERR %d" % 17), r
        assert " cpu=2 mem=1024 " in drv.ok("reconfig %s %s 2 1024" % (hid, u))
        drv.ok("power %s %s on" % (hid, u))
        r = drv.call("power %s %s on" % (hid, u))
        assert r.startswith("ERR 114"), r            # EALREADY
        r = drv.call("reconfig %s %s 4 1024" % (hid, u))
        assert r.startswith("ERR 16"), r             # EBUSY while on
        drv.wait_event(r"^vm %s %s POWERED_ON tools=RUNNING" % (hid, u))
        wait_for(lambda: drv.dbvms(hid).get(u) == ("POWERED_ON", "RUNNING"), 10, "db on+tools")
        drv.ok("power %s %s suspend" % (hid, u))
        drv.ok("power %s %s resume" % (hid, u))
        m = drv.mark()
        drv.ok("power %s %s reset" % (hid, u))
        drv.wait_event(r"^vm %s %s POWERED_ON tools=RUNNING" % (hid, u), since=m)
        drv.ok("power %s %s shutdown" % (hid, u))
        drv.wait_event(r"^vm %s %s POWERED_OFF" % (hid, u))
        wait_for(lambda: drv.dbvms(hid).get(u, ("",))[0] == "POWERED_OFF", 10, "db off")
        drv.ok("delete %s %s" % (hid, u))
        assert not os.path.exists(vmdir)
        wait_for(lambda: u not in drv.dbvms(hid), 10, "db delete")
        r = drv.call("power %s %s on" % (hid, u))
        assert r.startswith("ERR 2"), r              # ENOENT
    finally:
        h.stop()


def test_bad_requests_change_nothing(tmp, drv):
    h = Hostd(tmp)
    try:
        hid = drv.add(h.hosts[0])
        for bad in ["create %s not-a-uuid x shared" % hid,
                    "create %s %s ../x shared" % (hid, new_uuid()),
                    "create %s %s x nosuchds" % (hid, new_uuid())]:
            r = drv.call(bad)
            assert r.startswith("ERR"), (bad, r)
        assert drv.dbvms(hid) == {}
        assert [n for n in os.listdir(os.path.join(tmp, "shared")) if not n.startswith(".")] == []
    finally:
        h.stop()


def test_reconnect_reconciliation_neither_loses_nor_duplicates(tmp, drv):
    h = Hostd(tmp)
    host = h.hosts[0]
    hid = drv.add(host)
    keep, gone = new_uuid(), new_uuid()
    drv.ok("create %s %s keep shared" % (hid, keep))
    drv.ok("create %s %s gone shared" % (hid, gone))
    drv.ok("power %s %s on" % (hid, keep))
    wait_for(lambda: len(drv.dbvms(hid)) == 2, 10, "2 VMs in db")
    h.stop()
    drv.wait_state(hid, "not_responding")
    # While vpxd is away the host loses one VM from its registry (deleted
    # locally) - and the running one keeps running.
    reg = os.path.join(h.state, "vms")
    with open(reg) as f:
        lines = [l for l in f if "/gone/" not in l]
    with open(reg, "w") as f:
        f.writelines(lines)
    h2 = Hostd(tmp, extra=["--port", str(host["port"])], state=h.state)
    try:
        drv.wait_state(hid, "connected")
        wait_for(lambda: set(drv.dbvms(hid)) == {keep}, 10, "reconciled VM set")
        assert drv.dbvms(hid)[keep][0] == "POWERED_ON"
        # One VM, once: nothing duplicated in the database.
        assert len(drv.dbvms(hid)) == 1
    finally:
        h2.stop()


def test_restart_keeps_vms_running(tmp, drv):
    h = Hostd(tmp)
    host = h.hosts[0]
    hid = drv.add(host)
    u = new_uuid()
    drv.ok("create %s %s runner shared" % (hid, u))
    drv.ok("power %s %s on" % (hid, u))
    h.stop()
    h2 = Hostd(tmp, extra=["--port", str(host["port"])], state=h.state)
    try:
        assert "VM runner is still running" in h2.d.log()
        drv.wait_state(hid, "connected")
        wait_for(lambda: drv.dbvms(hid).get(u, ("",))[0] == "POWERED_ON", 10, "still on")
    finally:
        h2.stop()


def test_datastore_heartbeat_files(tmp, drv):
    h = Hostd(tmp, datastores=["shared=%s:shared" % os.path.join(tmp, "shared"),
                                "local=%s" % os.path.join(tmp, "local")])
    try:
        u = h.hosts[0]["uuid"]
        hb = os.path.join(tmp, "shared", ".kvc-hb", u)

        def stamp():
            try:
                with open(hb) as f:
                    return int(re.search(r"time_ms=(\d+)", f.read()).group(1))
            except (OSError, AttributeError):
                return 0
        first = wait_for(stamp, 10, "heartbeat file")
        wait_for(lambda: stamp() > first, 10, "heartbeat file updated")
        assert not os.path.exists(os.path.join(tmp, "local", ".kvc-hb"))
        # Stopped on demand (HA tests), the file goes stale while network
        # heartbeats go on.
        hid = drv.add(h.hosts[0])
        assert h.control("host 0 dshb stop") == "OK"
        a = stamp()
        hb0 = int(drv.ok("status %s" % hid).split()[2][3:])
        wait_for(lambda: int(drv.ok("status %s" % hid).split()[2][3:]) >= hb0 + 3, 10,
                 "3 more network heartbeats")
        assert stamp() == a
        assert h.control("host 0 dshb start") == "OK"
        wait_for(lambda: stamp() > a, 10, "datastore heartbeat back")
    finally:
        h.stop()


def test_host_remove_forgets_vpxd(tmp, drv):
    h = Hostd(tmp)
    try:
        hid = drv.add(h.hosts[0])
        pin = os.path.join(h.state, "vpxd.thumbprint")
        assert os.path.exists(pin)
        drv.ok("detach %s forget" % hid)
        wait_for(lambda: not os.path.exists(pin), 10, "pin dropped")
    finally:
        h.stop()
