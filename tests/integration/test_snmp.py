"""vpxd's SNMP subagent (driven by vpxd/kvc-snmp-harness) under Debian's
snmpd, read with snmpwalk/snmpget, notifications received by snmptrapd.

Everything runs on 127.0.0.1 with free ports, its own config files and its
own AgentX socket in a temporary directory.  No MIB file of the system is
needed: OIDs are numeric, or come from packaging/mib/KVCENTER-MIB.txt.
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from kvctest import Daemon, binpath, wait_for, SRCDIR

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
SNMPTRAPD = shutil.which("snmptrapd") or "/usr/sbin/snmptrapd"
SNMPWALK = shutil.which("snmpwalk")
pytestmark = pytest.mark.skipif(
    not (os.path.exists(SNMPD) and os.path.exists(SNMPTRAPD) and SNMPWALK),
    reason="net-snmp tools missing (Debian packages snmpd, snmp, snmptrapd)")

ROOT = ".1.3.6.1.4.1.32473"
VMTAB = ROOT + ".2.1.1"
NICTAB = ROOT + ".2.4.1"
HOSTTAB = ROOT + ".3.1.1"
CLTAB = ROOT + ".4.1.1"
MIBDIR = os.path.join(SRCDIR, "packaging", "mib")
# No system MIBs: quiet tools, numeric output. The client tools get their own
# persistent directory, made in advance: on a machine where no net-snmp tool
# ever ran, they would otherwise print "Created directory: .../cert_indexes"
# on stderr the first time.
_CLIENT_PERSIST = tempfile.mkdtemp(prefix="kvc-snmp-client-")
os.makedirs(os.path.join(_CLIENT_PERSIST, "cert_indexes"), exist_ok=True)
atexit.register(shutil.rmtree, _CLIENT_PERSIST, True)
ENV = dict(os.environ, MIBS="", MIBDIRS=MIBDIR, SNMP_PERSISTENT_DIR=_CLIENT_PERSIST)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(argv, timeout=60):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV)
    return p.returncode, p.stdout, p.stderr


def walk(port, oid, bulk=False, extra=()):
    tool = "snmpbulkwalk" if bulk else "snmpwalk"
    argv = [tool, "-v2c", "-c", "public", "-On", "-Oq", "-t", "5", "-r", "1"] + list(extra)
    if bulk:
        argv.append("-Cr50")
    rc, out, err = run(argv + ["127.0.0.1:%d" % port, oid], timeout=120)
    assert rc == 0, err
    res = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        if k.startswith(oid + "."):
            res[k[len(oid) + 1:]] = v.strip().strip('"')
    return res


def snmpget(port, *oids):
    rc, out, err = run(["snmpget", "-v2c", "-c", "public", "-On", "-Oq", "-t", "5", "-r", "1",
                        "127.0.0.1:%d" % port] + list(oids))
    assert rc == 0, err
    return [line.partition(" ")[2].strip().strip('"') for line in out.splitlines()]


DATA = {
    "vms": [
        {"id": "vm-58", "name": "web01", "config_file": "[ds1] web01/web01.vmx",
         "guest_os": "otherLinux64Guest", "memory_mb": 2048, "power_state": "poweredOff",
         "guest_state": "notRunning", "vcpus": 2, "uuid": "564d7a1c-0000-4000-8000-000000000058",
         "host": "esx1.example",
         "nics": [{"portgroup": "VM Network", "connected": True, "mac": "52:54:00:ab:cd:ef"},
                  {"portgroup": "backup", "connected": False, "mac": "52:54:00:00:00:02"}]},
        {"id": "vm-61", "name": "db01", "config_file": "[ds1] db01/db01.vmx",
         "guest_os": "debian12_64Guest", "memory_mb": 4096, "power_state": "poweredOn",
         "guest_state": "running", "vcpus": 4, "uuid": "564d7a1c-0000-4000-8000-000000000061",
         "host": "esx2.example", "nics": []},
    ],
    "hosts": [
        {"id": "host-28", "name": "esx1.example", "state": "CONNECTED", "cpu_capacity_mhz": 9600,
         "cpu_usage_mhz": 1200, "mem_capacity_mb": 16384, "mem_usage_mb": 4096, "vm_count": 1,
         "cluster": "prod"},
        {"id": "host-29", "name": "esx2.example", "state": "CONNECTED", "cpu_capacity_mhz": 4800,
         "cpu_usage_mhz": 2400, "mem_capacity_mb": 8192, "mem_usage_mb": 6000, "vm_count": 1,
         "cluster": "prod"},
    ],
    "clusters": [
        {"id": "domain-c7", "name": "prod", "ha_enabled": True, "ha_status": "green",
         "drs_enabled": True, "drs_behavior": "fullyAutomated", "host_count": 2, "vm_count": 2},
    ],
}


class Snmpd:
    """A private snmpd master: UDP port, AgentX socket and trap sink of its own."""

    def __init__(self, tmp, trap_port):
        self.tmp = tmp
        self.port = free_udp_port()
        self.agentx = os.path.join(tmp, "agentx")
        # The persistent directory must not be the config directory: snmpd
        # writes its state to <persistent dir>/snmpd.conf.
        os.makedirs(os.path.join(tmp, "persist"), exist_ok=True)
        self.conf = os.path.join(tmp, "master.conf")
        with open(self.conf, "w") as f:
            f.write("agentAddress udp:127.0.0.1:%d\n" % self.port)
            f.write("master agentx\nagentXSocket unix:%s\n" % self.agentx)
            f.write("rocommunity public 127.0.0.1\n")
            f.write("trap2sink 127.0.0.1:%d public\n" % trap_port)
        self.d = None
        self.start()

    def start(self):
        env = dict(ENV, SNMP_PERSISTENT_DIR=os.path.join(self.tmp, "persist"))
        self.d = Daemon([SNMPD, "-f", "-Lo", "-C", "-c", self.conf, "-p",
                         os.path.join(self.tmp, "snmpd.pid")],
                        logpath=os.path.join(self.tmp, "snmpd.log"), env=env)
        self.d.wait_log(r"NET-SNMP version")
        wait_for(lambda: os.path.exists(self.agentx), 10, "AgentX socket")

    def stop(self):
        if self.d:
            self.d.stop()
            self.d = None


class Trapd:
    def __init__(self, tmp):
        self.port = free_udp_port()
        conf = os.path.join(tmp, "trapd.conf")
        with open(conf, "w") as f:
            f.write("disableAuthorization yes\nsnmpTrapdAddr udp:127.0.0.1:%d\n" % self.port)
        env = dict(ENV, SNMP_PERSISTENT_DIR=os.path.join(tmp, "trapd-persist"))
        self.d = Daemon([SNMPTRAPD, "-f", "-Lo", "-C", "-c", conf, "-On", "-p",
                         os.path.join(tmp, "trapd.pid")],
                        logpath=os.path.join(tmp, "trapd.log"), env=env)
        self.d.wait_log(r"NET-SNMP version")

    def traps(self):
        """Received notifications: list of {varbind oid: value}."""
        out = []
        for block in re.split(r"\n(?=\d{4}-\d\d-\d\d )", self.d.log()):
            vbs = dict(re.findall(r"(\.[\d.]+) = [A-Za-z-]+: (\"[^\"]*\"|\S+)", block))
            if ".1.3.6.1.6.3.1.1.4.1.0" in vbs:
                out.append({k: v.strip('"') for k, v in vbs.items()})
        return out

    def wait_trap(self, trap, name, timeout=15):
        def find():
            for t in self.traps():
                if t.get(".1.3.6.1.6.3.1.1.4.1.0") == "%s.0.%d" % (ROOT, trap) and \
                        t.get(ROOT + ".5.1.0") == name:
                    return t
            return None
        return wait_for(find, timeout, "notification %d for %s" % (trap, name))

    def stop(self):
        self.d.stop()


class Harness:
    def __init__(self, tmp, agentx, data=None, synthetic=0):
        self.data_path = os.path.join(tmp, "inventory.json")
        self.write(data if data is not None else DATA)
        argv = [binpath("vpxd/kvc-snmp-harness"), "--agentx", agentx, "--ping", "1",
                "--data", self.data_path]
        if synthetic:
            argv += ["--synthetic-vms", str(synthetic)]
        self.gen = 1
        self.d = Daemon(argv, logpath=os.path.join(tmp, "harness.log"))
        self.d.wait_log(r"ready: ")

    def write(self, data):
        tmp = self.data_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, self.data_path)

    def update(self, data):
        self.write(data)
        self.gen += 1
        self.d.kill(signal.SIGHUP, group=False)
        self.d.wait_log(r"reloaded: generation %d," % self.gen)

    def wait_attached(self, n=1):
        wait_for(lambda: self.d.log().count("master attached") + self.d.log().count(
            "attached to the SNMP master agent") >= n, 15, "subagent attached")

    def stop(self):
        assert self.d.alive(), self.d.log()[-2000:]
        return self.d.stop()


@pytest.fixture
def env():
    tmp = tempfile.mkdtemp(prefix="test_snmp-")
    trapd = Trapd(tmp)
    snmpd = Snmpd(tmp, trapd.port)
    h = Harness(tmp, snmpd.agentx)
    h.wait_attached()
    wait_for(lambda: walk(snmpd.port, ROOT + ".1.1"), 10, "product scalar served")
    yield tmp, snmpd, trapd, h
    rc = h.stop()
    snmpd.stop()
    trapd.stop()
    assert rc == 0
    shutil.rmtree(tmp, ignore_errors=True)


def test_mib_reads_cleanly():
    rc, out, err = run(["snmptranslate", "-M", MIBDIR, "-m", "KVCENTER-MIB", "-On",
                        "KVCENTER-MIB::kvcVmDisplayName"])
    assert rc == 0 and out.strip() == VMTAB + ".2" and err == ""
    rc, out, err = run(["snmptranslate", "-M", MIBDIR, "-m", "KVCENTER-MIB", "-Tp"])
    assert rc == 0 and err == ""
    for name in ("kvcVmTable", "kvcVmNetTable", "kvcHostTable", "kvcClusterTable",
                 "kvcVmPoweredOn", "kvcAlarmRaised", "kvcProdBuild"):
        assert name in out
    # Added to the default list, as an operator would: nothing about our module.
    p = subprocess.run(["snmptranslate", "-M", "+" + MIBDIR, "-m", "+KVCENTER-MIB", "-On",
                        "KVCENTER-MIB::kvcHaVmRestarted"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == ROOT + ".0.8"
    assert "KVCENTER" not in p.stderr


def test_walk_and_get_match_inventory(env):
    tmp, snmpd, trapd, h = env
    assert snmpget(snmpd.port, ROOT + ".1.1.0", ROOT + ".1.2.0", ROOT + ".1.4.0") == \
        ["kvcenter", "0.1.0", "harness"]
    vm = walk(snmpd.port, VMTAB)
    for v in DATA["vms"]:
        i = v["id"].split("-")[1]
        assert vm["2." + i] == v["name"]
        assert vm["3." + i] == v["config_file"]
        assert vm["4." + i] == v["guest_os"]
        assert vm["5." + i] == str(v["memory_mb"])
        assert vm["6." + i] == {"poweredOn": "powered on", "poweredOff": "powered off"}[v["power_state"]]
        assert vm["7." + i] == v["id"]
        assert vm["8." + i] == v["guest_state"]
        assert vm["9." + i] == str(v["vcpus"])
        assert vm["10." + i] == v["uuid"]
        assert vm["11." + i] == v["host"]
    assert len(vm) == 10 * len(DATA["vms"])

    nic = walk(snmpd.port, NICTAB)
    assert nic["4.58.1"] == "VM Network" and nic["5.58.1"] == "1"
    assert nic["4.58.2"] == "backup" and nic["5.58.2"] == "2"
    assert nic["6.58.1"].replace(" ", "").lower() == "525400abcdef"
    assert len(nic) == 4 * 2

    host = walk(snmpd.port, HOSTTAB)
    for hst in DATA["hosts"]:
        i = hst["id"].split("-")[1]
        assert host["2." + i] == hst["name"] and host["3." + i] == "1"
        assert host["4." + i] == str(hst["cpu_capacity_mhz"])
        assert host["5." + i] == str(hst["cpu_usage_mhz"])
        assert host["6." + i] == str(hst["mem_capacity_mb"])
        assert host["7." + i] == str(hst["mem_usage_mb"])
        assert host["8." + i] == str(hst["vm_count"])
        assert host["9." + i] == hst["id"]

    cl = walk(snmpd.port, CLTAB)
    assert cl == {"2.7": "prod", "3.7": "1", "4.7": "2", "5.7": "1", "6.7": "3", "7.7": "2",
                  "8.7": "2", "9.7": "domain-c7"}

    # Through the MIB: names, enumerations and the MAC's display hint.
    rc, out, err = run(["snmpwalk", "-v2c", "-c", "public", "-M", MIBDIR, "-m", "KVCENTER-MIB",
                        "127.0.0.1:%d" % snmpd.port, "KVCENTER-MIB::kvcVirtMachines"])
    assert rc == 0 and err == "", err
    assert 'KVCENTER-MIB::kvcVmDisplayName.58 = STRING: "web01"' in out
    assert "KVCENTER-MIB::kvcVmNetConnected.58.1 = INTEGER: true(1)" in out
    assert "KVCENTER-MIB::kvcVmMAC.58.1 = STRING: 52:54:0:ab:cd:ef" in out
    rc, out, err = run(["snmpget", "-v2c", "-c", "public", "-M", MIBDIR, "-m", "KVCENTER-MIB",
                        "127.0.0.1:%d" % snmpd.port, "KVCENTER-MIB::kvcHostConnectionState.28",
                        "KVCENTER-MIB::kvcClusterDrsBehavior.7"])
    assert rc == 0 and "connected(1)" in out and "fullyAutomated(3)" in out

    # A row that does not exist.
    rc, out, err = run(["snmpget", "-v2c", "-c", "public", "-On", "127.0.0.1:%d" % snmpd.port,
                        VMTAB + ".2.999"])
    assert "No Such Instance" in out


def test_traps_on_power_on_and_off(env):
    tmp, snmpd, trapd, h = env
    data = json.loads(json.dumps(DATA))
    data["vms"][0]["power_state"] = "poweredOn"
    h.update(data)
    t = trapd.wait_trap(1, "web01")
    assert t[ROOT + ".5.2.0"] == "vm-58" and t[ROOT + ".5.3.0"] == "esx1.example"
    assert snmpget(snmpd.port, VMTAB + ".6.58") == ["powered on"]
    data["vms"][0]["power_state"] = "poweredOff"
    h.update(data)
    trapd.wait_trap(2, "web01")
    assert snmpget(snmpd.port, VMTAB + ".6.58") == ["powered off"]


def test_other_notifications(env):
    tmp, snmpd, trapd, h = env
    data = json.loads(json.dumps(DATA))
    data["vms"][1]["guest_state"] = "notRunning"
    data["hosts"][0]["state"] = "NOT_RESPONDING"
    data["vms"][0]["power_state"] = "suspended"
    data["events"] = [
        {"trap": "ha_vm_restarted", "entity_name": "db01", "entity_id": "vm-61",
         "host_name": "esx1.example", "message": "restarted after esx2.example failed"},
        {"trap": "alarm_raised", "alarm_name": "Host memory usage", "alarm_severity": 4,
         "entity_name": "esx2.example", "entity_id": "host-29", "message": "memory 93%"},
    ]
    h.update(data)
    trapd.wait_trap(3, "db01")
    trapd.wait_trap(6, "esx1.example")
    trapd.wait_trap(5, "web01")
    ha = trapd.wait_trap(8, "db01")
    assert ha[ROOT + ".5.6.0"] == "restarted after esx2.example failed"
    al = trapd.wait_trap(9, "esx2.example")
    assert al[ROOT + ".5.4.0"] == "Host memory usage" and al[ROOT + ".5.5.0"] == "4"
    data["vms"][1]["guest_state"] = "running"
    data["hosts"][0]["state"] = "CONNECTED"
    data["events"] = []
    h.update(data)
    trapd.wait_trap(4, "db01")
    trapd.wait_trap(7, "esx1.example")
    assert snmpget(snmpd.port, HOSTTAB + ".3.28") == ["1"]


def test_rows_follow_vms_coming_and_going(env):
    tmp, snmpd, trapd, h = env
    data = json.loads(json.dumps(DATA))
    for k in range(5):
        data["vms"].append(dict(DATA["vms"][1], id="vm-%d" % (100 + k), name="new%d" % k, nics=[]))
    h.update(data)
    names = walk(snmpd.port, VMTAB + ".2")
    assert names == {"58": "web01", "61": "db01", "100": "new0", "101": "new1", "102": "new2",
                     "103": "new3", "104": "new4"}
    del data["vms"][0]              # web01 and its NICs go
    del data["vms"][2]              # new1 goes
    data["vms"][0]["name"] = "db01-renamed"
    h.update(data)
    assert walk(snmpd.port, VMTAB + ".2") == {"61": "db01-renamed", "100": "new0", "102": "new2",
                                             "103": "new3", "104": "new4"}
    assert walk(snmpd.port, NICTAB) == {}


def test_reattach_after_snmpd_restart(env):
    tmp, snmpd, trapd, h = env
    snmpd.stop()
    h.d.wait_log(r"detached from the SNMP master agent")
    assert h.d.alive()
    data = json.loads(json.dumps(DATA))
    data["vms"][0]["name"] = "changed-while-detached"
    h.update(data)                  # keeps working without a master
    snmpd.start()
    h.d.wait_log(r"after_io: attached to the SNMP master agent", timeout=15)
    wait_for(lambda: walk(snmpd.port, VMTAB + ".2").get("58") == "changed-while-detached",
             10, "table served again")
    data["vms"][0]["power_state"] = "poweredOn"
    h.update(data)
    trapd.wait_trap(1, "changed-while-detached")


def test_snmpd_absent_at_start():
    tmp = tempfile.mkdtemp(prefix="test_snmp-")
    trapd = Trapd(tmp)
    agentx = os.path.join(tmp, "agentx")
    h = Harness(tmp, agentx)
    try:
        h.d.wait_log(r"no SNMP master agent at")
        snmpd = Snmpd(tmp, trapd.port)
        try:
            h.d.wait_log(r"after_io: attached to the SNMP master agent", timeout=15)
            wait_for(lambda: walk(snmpd.port, VMTAB + ".2").get("61") == "db01", 10, "VM table")
        finally:
            snmpd.stop()
    finally:
        assert h.stop() == 0
        trapd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_walk_10000_vms():
    tmp = tempfile.mkdtemp(prefix="test_snmp-")
    trapd = Trapd(tmp)
    snmpd = Snmpd(tmp, trapd.port)
    h = Harness(tmp, snmpd.agentx, data={}, synthetic=10000)
    try:
        h.wait_attached()
        names = walk(snmpd.port, VMTAB + ".2")          # 10,000 GETNEXTs
        assert len(names) == 10000
        assert names["100000"] == "synthetic-00000" and names["109999"] == "synthetic-09999"
        table = walk(snmpd.port, VMTAB, bulk=True)      # all 100,000 cells
        assert len(table) == 100000
        assert table["6.100001"] == "powered on" and table["6.100003"] == "powered off"
        nics = walk(snmpd.port, NICTAB + ".4", bulk=True)
        assert len(nics) == 10000
    finally:
        assert h.stop() == 0
        snmpd.stop()
        trapd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
