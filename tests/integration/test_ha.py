"""vSphere-style HA (docs/ha.md) with the sim backend: a real vpxd and one
hostd process per host, each in its own process group on 127.0.0.1.

Every wait polls with a deadline, and every poll also checks the invariant
HA exists for: no VM ever runs on two hosts (the hosts' own VM lists, read
over their control sockets) and the inventory agrees with the hosts.

Network isolation is made with hostd's failure-injection point
`host 0 net cut`: the host drops its vpxd session, refuses vpxd, and its
peer / isolation-address probes fail, while it keeps writing its datastore
heartbeats (the storage network stays up), as a host whose management NIC
died would."""
import os
import random
import sqlite3
import tempfile

import pytest

from hostd_util import Hostd, rpc_missing_reason
from kvctest import binpath, free_port, wait_for
from test_vpxd_util import Vpxd, check_error

reason = rpc_missing_reason()
if reason is None and not os.path.exists(binpath("vpxd/vpxd")):
    reason = "vpxd not built"
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

HB_MS = 200
DETECT_MS = 800
LEASE_MS = 1000


class DoubleRun(AssertionError):
    pass


class Cluster:
    """vpxd, a datacenter, an HA cluster and N sim hosts on a shared datastore."""

    def __init__(self, tmp, n, ha=None, hostd_conf=None):
        self.tmp = tmp
        self.v = Vpxd(conf_extra="[hosts]\nheartbeat = %dms\n" % HB_MS, tmp=tmp)
        self.v.start()
        self.tok = self.v.login()
        self.hostd_conf = hostd_conf
        st, self.dc, _ = self.api("POST", "/api/vcenter/datacenter", {"name": "DC"})
        assert st == 201, self.dc
        st, self.cl, _ = self.api("POST", "/api/kvc/cluster",
                                  {"name": "HA", "folder": self.dc, "ha_enabled": True})
        assert st == 201, self.cl
        settings = {"failure_detection_time_ms": DETECT_MS}
        settings.update(ha or {})
        self.patch_ha(settings)
        self.ports = [free_port() for _ in range(n)]
        self.hostd = {}
        self.ids = []
        self.uuid_of = {}
        for i in range(n):
            h = self.start_hostd(i)
            st, hid, _ = self.api("POST", "/api/vcenter/host", {
                "hostname": self.address(i), "port": self.ports[i], "user_name": "root",
                "password": "", "folder": self.cl, "thumbprint_verification": "THUMBPRINT",
                "thumbprint": h.hosts[0]["thumbprint"]})
            assert st == 201, hid
            self.ids.append(hid)
            self.hostd[hid] = h
            self.uuid_of[hid] = h.hosts[0]["uuid"]
        for hid in self.ids:
            self.wait_host(hid, "CONNECTED")
        self.ds = wait_for(self._shared_ds, 20, "the shared datastore")
        # Every host holds the settings before anything fails.
        for hid in self.ids:
            self.hostd[hid].d.wait_log(r"HA settings: on", timeout=20)

    def address(self, i):
        """Where vpxd reaches host I."""
        return "127.0.0.1"

    def start_hostd(self, i, **kw):
        # VM leases (lib/lease.h) short enough to expire within the
        # detection time, as they would with production timings.
        extra = ["--port", str(self.ports[i]), "--lease-ms", str(LEASE_MS)]
        if self.hostd_conf:
            extra += ["-c", self.hostd_conf]
        return Hostd(self.tmp, hosts=1, name="esx%d" % i, extra=extra,
                     state=os.path.join(self.tmp, "hostd-esx%d" % i), **kw)

    def api(self, method, path, body=None):
        return self.v.request(method, path, body, token=self.tok)

    def patch_ha(self, body):
        st, js, _ = self.api("PATCH", "/api/kvc/cluster/%s/ha" % self.cl, body)
        assert st == 204, js

    def _shared_ds(self):
        st, rows, _ = self.api("GET", "/api/vcenter/datastore?names=shared")
        return rows[0]["datastore"] if st == 200 and rows else None

    def db(self, sql, *args):
        c = sqlite3.connect("file:%s?mode=ro" % self.v.db_path, uri=True, timeout=10)
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def wait_host(self, hid, state, timeout=20):
        wait_for(lambda: self.db("SELECT connection_state FROM host WHERE id = ?", hid)
                 == [(state,)], timeout, "host %s %s" % (hid, state))

    def create_vm(self, name, host, power=True):
        st, vm, _ = self.api("POST", "/api/vcenter/vm", {
            "name": name, "guest_OS": "OTHER_LINUX_64",
            "placement": {"host": host, "datastore": self.ds},
            "cpu": {"count": 1}, "memory": {"size_MiB": 64}})
        assert st == 201, vm
        if power:
            st, js, _ = self.api("POST", "/api/vcenter/vm/%s/power?action=start" % vm)
            assert st == 204, js
        return vm

    def vm_uuid(self, vm):
        return self.db("SELECT instance_uuid FROM vm WHERE id = ?", vm)[0][0]

    def copies(self):
        """uuid -> [host ids whose hostd says the VM is on], for live hosts."""
        out = {}
        for hid, h in self.hostd.items():
            if h is None:
                continue
            r = h.control("host 0 vms")
            assert r.startswith("OK"), r
            for item in r.split()[1:]:
                u, _, st = item.partition("=")
                if st == "on":
                    out.setdefault(u, []).append(hid)
        for u, where in out.items():
            if len(where) > 1:
                raise DoubleRun("VM %s runs on %s at once" % (u, where))
        return out

    def running_once(self, vms, not_on=()):
        """Every VM of VMS runs on exactly one live host (not in NOT_ON), and
        the inventory places it there powered on."""
        copies = self.copies()
        for vm in vms:
            where = copies.get(self.vm_uuid(vm), [])
            if len(where) != 1 or where[0] in not_on:
                return False
            row = self.db("SELECT host, power_state FROM vm WHERE id = ?", vm)
            if row != [(where[0], "POWERED_ON")]:
                return False
        return True

    def wait_running_once(self, vms, not_on=(), timeout=20, what="VMs running once"):
        return wait_for(lambda: self.running_once(vms, not_on), timeout, what)

    def events(self, type_, obj=None):
        if obj:
            return self.db("SELECT seq, object, message FROM event WHERE type = ? AND object = ?"
                           " ORDER BY seq", type_, obj)
        return self.db("SELECT seq, object, message FROM event WHERE type = ? ORDER BY seq",
                       type_)

    def kill(self, hid):
        self.hostd[hid].kill9()
        self.hostd[hid] = None

    def revive(self, hid):
        i = self.ids.index(hid)
        self.hostd[hid] = self.start_hostd(i)
        self.wait_host(hid, "CONNECTED")

    def stop(self):
        for h in self.hostd.values():
            if h is not None:
                h.stop()
        self.v.stop()


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="kvc-ha-") as d:
        yield d


def test_settings_rest(tmp):
    c = Cluster(tmp, 1)
    try:
        st, js, _ = c.api("GET", "/api/kvc/cluster/%s/ha" % c.cl)
        assert st == 200, js
        assert js["enabled"] is True and js["failure_detection_time_ms"] == DETECT_MS
        assert js["admission_control"]["policy"] == "disabled"
        assert js["admission_control"]["host_failures_tolerated"] == 1
        assert js["restart_priority"] == "medium" and js["isolation_response"] == "none"
        assert js["vm_monitoring"]["enabled"] is False
        assert [h["host"] for h in js["hosts"]] == c.ids and js["failover"] == []
        before = js
        bad = [
            {"restart_priority": "urgent"},
            {"failure_detection_time_ms": 10},
            {"admission_control": {"policy": "magic"}},
            {"admission_control": {"failover_hosts": ["host-999999"]}},
            {"admission_control": {"bogus": 1}},
            {"isolation_address": "not-an-address"},
            {"vm_monitoring": {"max_resets": -1}},
            {"surprise": True},
        ]
        for body in bad:
            st, js, _ = c.api("PATCH", "/api/kvc/cluster/%s/ha" % c.cl, body)
            check_error(st, js, 400, "INVALID_ARGUMENT")
        st, js, _ = c.api("GET", "/api/kvc/cluster/%s/ha" % c.cl)
        assert js == before, "a refused PATCH changed nothing"
        c.patch_ha({"isolation_response": "power_off", "isolation_address": "127.0.0.1:9",
                    "admission_control": {"policy": "percentage", "memory_percent": 30},
                    "vm_monitoring": {"enabled": True, "failure_interval_s": 5}})
        st, js, _ = c.api("GET", "/api/kvc/cluster/%s/ha" % c.cl)
        assert js["isolation_response"] == "power_off"
        assert js["admission_control"]["policy"] == "percentage"
        assert js["admission_control"]["memory_percent"] == 30
        assert js["vm_monitoring"] == dict(before["vm_monitoring"], enabled=True,
                                           failure_interval_s=5)
        assert js["generation"] > before["generation"]
        # The host gets the new settings and keeps them for when vpxd is away.
        c.hostd[c.ids[0]].d.wait_log(r"HA settings: on, detection %d ms, isolation response"
                                     r" power_off, address '127.0.0.1:9'" % DETECT_MS)
        with open(os.path.join(tmp, "hostd-esx0", "ha.conf")) as f:
            assert "response=power_off" in f.read()
        assert c.events("com.vmware.vc.HA.ClusterConfigChangedEvent", c.cl)
        st, js, _ = c.api("GET", "/api/kvc/cluster/domain-c999999/ha")
        check_error(st, js, 404, "NOT_FOUND")
        # Per-VM restart priority.
        vm = c.create_vm("p", c.ids[0], power=False)
        st, js, _ = c.api("GET", "/api/kvc/vm/%s/ha" % vm)
        assert st == 200 and js["restart_priority"] == "medium" and js["override"] is None
        st, js, _ = c.api("PATCH", "/api/kvc/vm/%s/ha" % vm, {"restart_priority": "highest"})
        assert st == 204, js
        st, js, _ = c.api("GET", "/api/kvc/vm/%s/ha" % vm)
        assert js["restart_priority"] == "highest" and js["override"] == "highest"
        st, js, _ = c.api("PATCH", "/api/kvc/vm/%s/ha" % vm, {"restart_priority": "soon"})
        check_error(st, js, 400, "INVALID_ARGUMENT")
        st, js, _ = c.api("PATCH", "/api/kvc/vm/%s/ha" % vm, {"restart_priority": None})
        assert st == 204
        st, js, _ = c.api("GET", "/api/kvc/vm/%s/ha" % vm)
        assert js["override"] is None and js["restart_priority"] == "medium"
        # Every HA route is in the OpenAPI document.
        st, doc, _ = c.v.request("GET", "/api/openapi.json")
        assert {"get", "patch"} <= set(doc["paths"]["/api/kvc/cluster/{cluster}/ha"])
        assert {"get", "patch"} <= set(doc["paths"]["/api/kvc/vm/{vm}/ha"])
    finally:
        c.stop()


def test_kill9_host_restarts_its_vms_once_by_priority(tmp):
    c = Cluster(tmp, 3)
    try:
        a = c.ids[0]
        vms = {p: c.create_vm("vm-" + p, a) for p in ("high", "low", "medium", "off")}
        for p in ("high", "low"):
            st, js, _ = c.api("PATCH", "/api/kvc/vm/%s/ha" % vms[p], {"restart_priority": p})
            assert st == 204
        st, js, _ = c.api("PATCH", "/api/kvc/vm/%s/ha" % vms["off"],
                          {"restart_priority": "disabled"})
        assert st == 204
        idle = c.create_vm("stays-off", a, power=False)
        protected = [vms["high"], vms["medium"], vms["low"]]
        c.wait_running_once(list(vms.values()))
        c.kill(a)               # the whole process group: the host and its VMs
        c.wait_running_once(protected, not_on=(a,), timeout=30,
                            what="the failed host's VMs running on survivors")
        assert c.db("SELECT state FROM ha_host WHERE host = ?", a) == [("failed",)]
        assert c.events("com.vmware.vc.HA.DasHostFailedEvent", a)
        assert any("to failed" in m for _, _, m in
                   c.events("com.vmware.vc.HA.HostStateChangedEvent", a))
        wait_for(lambda: len(c.events("com.vmware.vc.ha.VmRestartedByHAEvent")) >= 3, 10,
                 "three restart events")
        restarted = [o for _, o, _ in c.events("com.vmware.vc.ha.VmRestartedByHAEvent")]
        assert sorted(restarted) == sorted(protected), restarted
        assert restarted == protected, "restarts go by priority: %s" % restarted
        assert c.db("SELECT count(*) FROM ha_restart") == [(0,)]
        # Restart priority "disabled" and a powered-off VM stay where they were.
        assert c.db("SELECT host FROM vm WHERE id IN (?, ?)", vms["off"], idle) == [(a,), (a,)]
        # The failed host comes back: it finds its VMs running elsewhere, does
        # not start them, and vpxd drops its stale registrations.
        c.revive(a)
        c.wait_host(a, "CONNECTED")

        def stale_dropped():
            held = c.hostd[a].control("host 0 vms")
            return all(c.vm_uuid(vm) not in held for vm in protected)
        wait_for(lambda: stale_dropped() and c.running_once(protected, not_on=(a,)), 20,
                 "stale registrations dropped from the returning host")
        wait_for(lambda: c.db("SELECT state FROM ha_host WHERE host = ?", a) == [("healthy",)],
                 10, "the returning host healthy")
        assert c.running_once(protected)
    finally:
        c.stop()


def test_isolated_host_powers_off_and_its_vms_restart_once(tmp):
    c = Cluster(tmp, 3, ha={"isolation_response": "power_off"})
    try:
        b = c.ids[1]
        vms = [c.create_vm("iso-%d" % i, b) for i in range(2)]
        c.wait_running_once(vms)
        assert c.hostd[b].control("host 0 net cut") == "OK"
        c.wait_running_once(vms, not_on=(b,), timeout=30,
                            what="the isolated host's VMs restarted elsewhere")
        c.hostd[b].d.wait_log(r"host isolated: .*isolation response power_off")
        assert c.events("com.vmware.vc.HA.DasHostIsolatedEvent", b)
        assert c.db("SELECT state FROM ha_host WHERE host = ?", b) == [("isolated",)]
        # Its datastore heartbeat never stopped: isolated, not failed.
        assert not c.events("com.vmware.vc.HA.DasHostFailedEvent", b)
        assert c.hostd[b].control("host 0 net restore") == "OK"
        c.wait_host(b, "CONNECTED")
        wait_for(lambda: all(c.vm_uuid(vm) not in c.hostd[b].control("host 0 vms")
                             for vm in vms) and c.running_once(vms, not_on=(b,)), 20,
                 "the isolated host's stale copies unregistered")
    finally:
        c.stop()


def test_isolated_host_with_leave_powered_on_keeps_its_vms(tmp):
    c = Cluster(tmp, 2)       # isolation response: none
    try:
        b = c.ids[1]
        vm = c.create_vm("stay", b)
        c.wait_running_once([vm])
        assert c.hostd[b].control("host 0 net cut") == "OK"
        wait_for(lambda: c.db("SELECT state FROM ha_host WHERE host = ?", b) == [("isolated",)],
                 20, "host isolated")
        # The state and the restart decision are taken in the same pass: with
        # the VM still listed in the host's power-on file, nothing is queued.
        assert c.db("SELECT count(*) FROM ha_restart") == [(0,)]
        c.hostd[b].d.wait_log(r"isolation response none applied to 0 VM")
        assert c.copies().get(c.vm_uuid(vm)) == [b]
        assert c.hostd[b].control("host 0 net restore") == "OK"
        c.wait_host(b, "CONNECTED")
        c.wait_running_once([vm])
        assert c.copies()[c.vm_uuid(vm)] == [b]
    finally:
        c.stop()


def test_vm_monitoring_resets_hung_guest_and_restarts_crashed_one(tmp):
    c = Cluster(tmp, 1, ha={"vm_monitoring": {"enabled": True, "failure_interval_s": 1,
                                              "min_uptime_s": 2, "max_resets": 2,
                                              "max_resets_window_s": 600},
                            "admission_control": {"policy": "disabled"}})
    try:
        a = c.ids[0]
        h = c.hostd[a]
        vm = c.create_vm("g", a)
        u = c.vm_uuid(vm)

        def tools():
            return c.db("SELECT power_state, tools_run_state FROM vm WHERE id = ?", vm)[0]
        for n in (1, 2):
            wait_for(lambda: tools() == ("POWERED_ON", "RUNNING"), 30, "tools running")
            assert h.control("host 0 vm %s hang" % u) == "OK"
            wait_for(lambda: len(c.events("VmDasBeingResetEvent", vm)) == n, 30,
                     "reset %d of the hung guest" % n)
        # The third hang is one too many in the window: no third reset.
        wait_for(lambda: tools() == ("POWERED_ON", "RUNNING"), 20, "tools running")
        assert h.control("host 0 vm %s hang" % u) == "OK"
        wait_for(lambda: c.events("com.vmware.vc.HA.VmMonitoringMaxResetsEvent", vm), 20,
                 "max resets reached")
        assert len(c.events("VmDasBeingResetEvent", vm)) == 2
        # A guest that dies is powered on again (another VM: the first used
        # its resets up).
        vm2 = c.create_vm("c", a)
        u2 = c.vm_uuid(vm2)
        wait_for(lambda: c.db("SELECT tools_run_state FROM vm WHERE id = ?", vm2)
                 == [("RUNNING",)], 20, "tools running")
        wait_for(lambda: c.db("SELECT protected FROM ha_vm WHERE vm = ?", vm2) == [(1,)], 20,
                 "protected")
        assert h.control("host 0 vm %s crash" % u2) == "OK"
        wait_for(lambda: c.events("com.vmware.vc.ha.VmRestartedByHAEvent", vm2), 20,
                 "crashed guest restarted")
        c.wait_running_once([vm2])
        # A VM the user powers off stays off.
        st, js, _ = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm2)
        assert st == 204, js
        wait_for(lambda: c.db("SELECT protected FROM ha_vm WHERE vm = ?", vm2) == [(0,)], 30,
                 "unprotected")
        assert len(c.events("com.vmware.vc.ha.VmRestartedByHAEvent", vm2)) == 1
        assert c.copies().get(u2) is None
    finally:
        c.stop()


def test_admission_control_refuses_power_on(tmp):
    conf = os.path.join(tmp, "hostd.conf")
    with open(conf, "w") as f:
        f.write("[sim]\nmemory = 256M\n")
    c = Cluster(tmp, 2, hostd_conf=conf,
                ha={"admission_control": {"policy": "host_failures", "host_failures_tolerated": 1}})
    try:
        a, b = c.ids
        # 2 x 256 MiB, one host failure tolerated: 256 MiB may run (4 VMs).
        vms = [c.create_vm("ac-%d" % i, a if i % 2 else b) for i in range(4)]
        extra = c.create_vm("ac-x", a, power=False)
        st, js, _ = c.api("POST", "/api/vcenter/vm/%s/power?action=start" % extra)
        msg = check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
        assert "failover" in msg, msg
        assert c.db("SELECT power_state FROM vm WHERE id = ?", extra) == [("POWERED_OFF",)]
        assert c.events("InsufficientFailoverResourcesEvent", c.cl)
        # A dedicated failover host takes no VMs of its own.
        st, js, _ = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vms[0])
        assert st == 204
        c.patch_ha({"admission_control": {"policy": "failover_hosts", "failover_hosts": [b]}})
        on_b = c.create_vm("ac-b", b, power=False)
        st, js, _ = c.api("POST", "/api/vcenter/vm/%s/power?action=start" % on_b)
        assert "failover host" in check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
        # With admission control off, the same power-on goes through.
        c.patch_ha({"admission_control": {"policy": "disabled"}})
        st, js, _ = c.api("POST", "/api/vcenter/vm/%s/power?action=start" % extra)
        assert st == 204, js
    finally:
        c.stop()


def test_vpxd_restart_in_the_middle_of_a_failover_finishes_it(tmp):
    c = Cluster(tmp, 2)
    try:
        a, b = c.ids
        vms = [c.create_vm("mid-%d" % i, a) for i in range(2)]
        c.wait_running_once(vms)
        # The survivor is unreachable for now, so the failover must wait.
        assert c.hostd[b].control("host 0 net cut") == "OK"
        c.wait_host(b, "NOT_RESPONDING")
        c.kill(a)
        wait_for(lambda: c.db("SELECT count(*) FROM ha_restart") == [(2,)], 20,
                 "the failover queued")
        c.v.kill9()
        c.v.start()
        c.tok = c.v.login()
        c.v.daemon.wait_log(r"resuming an interrupted failover|host-\d+: attaching", 20)
        assert c.hostd[b].control("host 0 net restore") == "OK"
        c.wait_running_once(vms, not_on=(a,), timeout=30,
                            what="the failover finished by the restarted vpxd")
        wait_for(lambda: c.db("SELECT count(*) FROM ha_restart") == [(0,)], 10,
                 "the failover queue empty")
    finally:
        c.stop()


def test_twenty_random_host_kills_and_revivals(tmp):
    # Each round kills a random running host while another is healthy, waits
    # until every VM runs again exactly once, and starts the victim again
    # without waiting for it: the next victim may be picked while it is
    # still coming back.
    run_twenty(Cluster(tmp, 3, ha={"admission_control": {"policy": "disabled"}}))


def run_twenty(c):
    rnd = random.Random(8)
    try:
        vms = [c.create_vm("r-%d" % i, c.ids[i % 3]) for i in range(6)]
        c.wait_running_once(vms)
        for rnd_i in range(20):
            healthy = [h for h in c.ids if c.hostd[h] is not None and
                       c.db("SELECT state FROM ha_host WHERE host = ?", h) == [("healthy",)]]
            if len(healthy) < 2:
                wait_for(lambda: sum(c.db("SELECT state FROM ha_host WHERE host = ?", h)
                                     == [("healthy",)] for h in c.ids) >= 2, 20,
                         "round %d: two healthy hosts" % rnd_i)
                healthy = [h for h in c.ids if c.db("SELECT state FROM ha_host WHERE host = ?",
                                                    h) == [("healthy",)]]
            victim = rnd.choice(healthy)
            c.kill(victim)
            c.wait_running_once(vms, not_on=(victim,), timeout=30,
                                what="round %d: every VM running once without %s"
                                % (rnd_i, victim))
            i = c.ids.index(victim)
            c.hostd[victim] = c.start_hostd(i)
        wait_for(lambda: all(c.db("SELECT state FROM ha_host WHERE host = ?", h)
                             == [("healthy",)] for h in c.ids) and c.running_once(vms), 30,
                 "every host back, every VM running once")
        assert c.db("SELECT count(*) FROM vm WHERE power_state = 'POWERED_ON'") == [(6,)]
        assert not c.events("com.vmware.vc.HA.VmDuplicateRunEvent")
    finally:
        c.stop()


VMKD = binpath("vmkernel-kvm/vmkd")
FAKE_VMX = binpath("tests/integration/test_vmkd_fake_vmx")


def kvm_skip_reason():
    if os.geteuid() != 0:
        return "the kvm backend's vmkd needs root (cgroups)"
    if not os.path.exists(VMKD) or not os.path.exists(FAKE_VMX):
        return "vmkd or its vmx test double is not built in this tree"
    return None


class KvmCluster(Cluster):
    """Hosts on the kvm backend: each one a vmkd (with vmkd's vmx test
    double, so no /dev/kvm is needed) and a hostd; a host dies as a whole:
    vmkd's process group (vmkd and its vmx) and hostd's."""
    VMX = FAKE_VMX
    GUEST = FAKE_VMX

    def start_hostd(self, i, **kw):
        from kvctest import Daemon
        d = os.path.join(self.tmp, "kvm-esx%d" % i)
        os.makedirs(d, exist_ok=True)
        sock = os.path.join(d, "vmkd.sock")
        conf = os.path.join(d, "vmkd.conf")
        with open(conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\n'
                    'ready-timeout = 20s\nstop-timeout = 5s\nstop-vms-on-exit = true\n'
                    '[cgroup]\nparent = "kvcenter-hatest-%d-%d"\nremove-parent-on-exit = true\n'
                    % (os.path.join(d, "vmkd-state"), sock, self.VMX, os.getpid(), i))
        if not hasattr(self, "vmkd"):
            self.vmkd = {}
        v = Daemon([VMKD, "-f", conf])
        v.wait_log(r"vmkd ready", timeout=15)
        self.vmkd[i] = v
        return Hostd(self.tmp, hosts=1, name="esx%d" % i, backend="kvm",
                     state=os.path.join(self.tmp, "hostd-esx%d" % i),
                     extra=["--port", str(self.ports[i]), "--lease-ms", str(LEASE_MS),
                            "--vmkd-socket", sock, "--guest-image", self.GUEST])

    def kill(self, hid):
        i = self.ids.index(hid)
        self.vmkd[i].kill()             # its group: vmkd and the vmx it spawned
        self.vmkd[i].proc.wait(5)
        super().kill(hid)

    def stop(self):
        super().stop()
        for v in getattr(self, "vmkd", {}).values():
            v.stop()


@pytest.mark.skipif(kvm_skip_reason() is not None, reason=kvm_skip_reason() or "")
def test_kvm_hosts_kill9_restarts_vms_once(tmp):
    c = KvmCluster(tmp, 2)
    try:
        a, b = c.ids
        vms = [c.create_vm("k-%d" % i, a) for i in range(2)]
        c.wait_running_once(vms, timeout=30)
        c.kill(a)
        c.wait_running_once(vms, not_on=(a,), timeout=40,
                            what="the kvm host's VMs running on the survivor")
        assert c.db("SELECT state FROM ha_host WHERE host = ?", a) == [("failed",)]
        c.revive(a)
        wait_for(lambda: all(c.vm_uuid(vm) not in c.hostd[a].control("host 0 vms")
                             for vm in vms) and c.running_once(vms, not_on=(a,)), 30,
                 "stale registrations dropped from the returning kvm host")
    finally:
        c.stop()


REAL_VMX = binpath("vmkernel-kvm/vmx")
GUEST = binpath("vmkernel-kvm/guest/kvc-guest.elf")


def real_kvm_skip_reason():
    r = kvm_skip_reason()
    if r:
        return r
    if not os.path.exists(REAL_VMX) or not os.path.exists(GUEST):
        return "vmx or the test guest is not built"
    from kvctest import kvm_usable
    ok, why = kvm_usable()
    return None if ok else why


class RealKvmCluster(KvmCluster):
    """The kvm backend with the real vmx and test guest."""
    VMX = REAL_VMX
    GUEST = GUEST


@pytest.mark.skipif(real_kvm_skip_reason() is not None, reason=real_kvm_skip_reason() or "")
def test_twenty_random_kvm_host_kills_and_revivals(tmp):
    """The same twenty rounds with real guests under vmx on kvm hosts."""
    run_twenty(RealKvmCluster(tmp, 3, ha={"admission_control": {"policy": "disabled"}}))
