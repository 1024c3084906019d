"""The sim backend at scale: one hostd process running many simulated hosts,
each with its own identity, port and connection, and failures on demand."""
import os
import tempfile
import uuid

import pytest

from hostd_util import Driver, Hostd, rpc_missing_reason
from kvctest import wait_for

reason = rpc_missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

N = 24


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="kvc-sim-") as d:
        yield d


def test_many_hosts_in_one_process(tmp):
    h = Hostd(tmp, hosts=N, name="sim")
    drv = Driver(tmp)
    try:
        assert len({x["uuid"] for x in h.hosts}) == N
        assert len({x["thumbprint"] for x in h.hosts}) == N
        assert len({x["port"] for x in h.hosts}) == N
        ids = [drv.add(x) for x in h.hosts]
        for hid in ids:
            assert drv.state(hid) == "connected"
        # Every host writes its own heartbeat file on the shared datastore.
        hb = os.path.join(tmp, "shared", ".kvc-hb")
        wait_for(lambda: set(os.listdir(hb)) >= {x["uuid"] for x in h.hosts}, 10, "hb files")
        # A VM on every host, powered on; the guests heartbeat.
        vms = {}
        for i, hid in enumerate(ids):
            u = str(uuid.uuid4())
            drv.ok("create %s %s vm%d shared cpu:30" % (hid, u, i))
            drv.ok("power %s %s on" % (hid, u))
            vms[hid] = u
        for hid, u in vms.items():
            wait_for(lambda: drv.dbvms(hid).get(u) == ("POWERED_ON", "RUNNING"), 10,
                     "tools running on %s" % hid)
        # Stats arrive with the workload's CPU demand.
        drv.wait_event(r"^stats %s n=2 host_mhz=[1-9]" % ids[0])
    finally:
        drv.stop()
        h.stop()


def test_crash_and_recover_one_simulated_host(tmp):
    h = Hostd(tmp, hosts=3, name="sim")
    drv = Driver(tmp)
    try:
        ids = [drv.add(x) for x in h.hosts]
        u = str(uuid.uuid4())
        drv.ok("create %s %s victim shared" % (ids[1], u))
        drv.ok("power %s %s on" % (ids[1], u))
        assert h.control("host 1 crash") == "OK"
        drv.wait_state(ids[1], "not_responding")
        # The others are untouched.
        assert drv.state(ids[0]) == "connected" and drv.state(ids[2]) == "connected"
        assert h.control("host 1 recover") == "OK"
        drv.wait_state(ids[1], "connected")
        # The crash stopped its VM; the reconnect inventory says so.
        wait_for(lambda: drv.dbvms(ids[1]).get(u, ("",))[0] == "POWERED_OFF", 10, "VM off")
    finally:
        drv.stop()
        h.stop()


def test_guest_hang_stops_tools_heartbeat(tmp):
    h = Hostd(tmp, name="sim")
    drv = Driver(tmp)
    try:
        hid = drv.add(h.hosts[0])
        u = str(uuid.uuid4())
        drv.ok("create %s %s g shared" % (hid, u))
        drv.ok("power %s %s on" % (hid, u))
        wait_for(lambda: drv.dbvms(hid).get(u) == ("POWERED_ON", "RUNNING"), 10, "tools")
        assert h.control("host 0 vm %s hang" % u) == "OK"
        wait_for(lambda: drv.dbvms(hid).get(u) == ("POWERED_ON", "NOT_RUNNING"), 10, "hung")
        assert h.control("host 0 vm %s crash" % u) == "OK"
        wait_for(lambda: drv.dbvms(hid).get(u, ("",))[0] == "POWERED_OFF", 10, "crashed")
        assert h.control("host 0 vm nosuch hang").startswith("ERR")
        assert h.control("bogus").startswith("ERR")
    finally:
        drv.stop()
        h.stop()
