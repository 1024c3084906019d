"""The host CIM server (hostd/kvc-cimd) against Debian's wbemcli.

Instances are checked against the host's own /proc and /sys; sensors against
a fake hwmon tree (the build machines usually have no hwmon).
"""
import http.client
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from kvctest import Daemon, binpath, free_port

WBEMCLI = shutil.which("wbemcli")
pytestmark = pytest.mark.skipif(WBEMCLI is None, reason="wbemcli not installed (Debian package sblim-wbemcli)")

ENV = dict(os.environ, no_proxy="*", http_proxy="", https_proxy="")


def wbemcli(*args, timeout=30):
    p = subprocess.run([WBEMCLI] + list(args), capture_output=True, text=True, timeout=timeout, env=ENV)
    return p.returncode, p.stdout, p.stderr


def parse_nl(out):
    """wbemcli -nl output -> list of (path, {prop: value}) with strings unquoted."""
    insts = []
    for line in out.splitlines():
        if not line.strip():
            continue
        if line.startswith("-"):
            name, _, val = line[1:].partition("=")
            if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                val = val[1:-1]
            insts[-1][1][name] = val
        else:
            insts.append((line, {}))
    return insts


def proc_cpus():
    cpus = []
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "processor":
                cpus.append({})
            elif cpus:
                cpus[-1].setdefault(k, v)
    return cpus


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def ether_ifaces():
    out = []
    for n in sorted(os.listdir("/sys/class/net")):
        try:
            with open("/sys/class/net/%s/type" % n) as f:
                if f.read().strip() == "1":
                    out.append(n)
        except OSError:
            pass
    return out


class Cimd:
    def __init__(self, tmp, sysroot=None, tls=False, vms=None):
        self.tmp = tmp
        self.port = free_port()
        with open(os.path.join(tmp, "pw"), "w") as f:
            f.write("s3cret\n")
        self.vms_path = os.path.join(tmp, "vms.json")
        self.set_vms(vms or [])
        argv = [binpath("hostd/kvc-cimd"), "--listen", "127.0.0.1:%d" % self.port,
                "--user", "root", "--password-file", os.path.join(tmp, "pw"),
                "--hostname", "esx1.example", "--vms", self.vms_path]
        if sysroot:
            argv += ["--sysroot", sysroot]
        self.scheme = "http"
        if tls:
            key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "crt.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", crt],
                           check=True, capture_output=True, timeout=60)
            argv += ["--tls-cert", crt, "--tls-key", key]
            self.scheme = "https"
        self.d = Daemon(argv, logpath=os.path.join(tmp, "cimd.log"))
        self.d.wait_log(r"ready on port %d" % self.port)

    def set_vms(self, vms):
        tmp = self.vms_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(vms, f)
        os.rename(tmp, self.vms_path)

    def url(self, path, user="root", pw="s3cret", ns="root/cimv2"):
        return "%s://%s:%s@127.0.0.1:%d/%s:%s" % (self.scheme, user, pw, self.port, ns, path)

    def ei(self, cls, ns="root/cimv2"):
        rc, out, err = wbemcli("ei", "-nl", "-noverify", self.url(cls, ns=ns))
        assert rc == 0, err
        return parse_nl(out)

    def stop(self):
        assert self.d.alive(), self.d.log()[-2000:]
        self.d.stop()


VMS = [
    {"name": "web01", "uuid": "564d7a1c-0000-4000-8000-000000000001", "power_state": "poweredOn",
     "guest_os": "otherLinux64Guest", "memory_mb": 2048, "vcpus": 2},
    {"name": "db01", "uuid": "564d7a1c-0000-4000-8000-000000000002", "power_state": "poweredOff",
     "guest_os": "debian12_64Guest", "memory_mb": 4096, "vcpus": 4},
]


@pytest.fixture
def cimd():
    tmp = tempfile.mkdtemp(prefix="test_cim-")
    c = Cimd(tmp, vms=VMS)
    yield c
    c.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def test_ei_computer_system_matches_proc(cimd):
    insts = cimd.ei("CIM_ComputerSystem")
    hosts = [p for _, p in insts if p["CreationClassName"] == "KVC_UnitaryComputerSystem"]
    assert len(hosts) == 1
    h = hosts[0]
    assert h["Name"] == "esx1.example" and h["ElementName"] == "esx1.example"
    assert h["OperationalStatus"] == "2" and h["HealthState"] == "5"
    assert int(h["KVC_NumberOfProcessors"]) == len(proc_cpus())
    assert int(h["KVC_MemoryTotalKB"]) == meminfo("MemTotal")
    vms = {p["ElementName"]: p for _, p in insts if p["CreationClassName"] == "KVC_VirtualMachine"}
    assert set(vms) == {"web01", "db01"}
    assert vms["web01"]["EnabledState"] == "2" and vms["db01"]["EnabledState"] == "3"
    assert vms["db01"]["KVC_MemoryMB"] == "4096" and vms["db01"]["KVC_NumCPUs"] == "4"


def test_ei_processor_memory_ethernet_match_proc_and_sys(cimd):
    cpus = proc_cpus()
    procs = cimd.ei("CIM_Processor")
    assert len(procs) == len(cpus)
    for _, p in procs:
        idx = int(p["DeviceID"][3:])
        assert p["ElementName"] == cpus[idx]["model name"]
        assert abs(int(p["CurrentClockSpeed"]) - float(cpus[idx]["cpu MHz"])) < 1000
        assert p["HealthState"] == "5" and p["OperationalStatus"] == "2"

    mem = cimd.ei("CIM_Memory")
    assert len(mem) == 1
    assert int(mem[0][1]["NumberOfBlocks"]) == meminfo("MemTotal")
    assert mem[0][1]["BlockSize"] == "1024"

    ports = cimd.ei("CIM_EthernetPort")
    assert sorted(p["DeviceID"] for _, p in ports) == ether_ifaces()
    for _, p in ports:
        with open("/sys/class/net/%s/address" % p["DeviceID"]) as f:
            assert p["PermanentAddress"] == f.read().strip().replace(":", "").upper()


def test_ei_sensors_follow_hwmon(cimd):
    sensors = cimd.ei("CIM_NumericSensor")
    n = 0
    if os.path.isdir("/sys/class/hwmon"):
        for hw in os.listdir("/sys/class/hwmon"):
            for f in os.listdir(os.path.join("/sys/class/hwmon", hw)):
                if f.endswith("_input") and f.split("_")[0].rstrip("0123456789") in (
                        "temp", "in", "fan", "curr", "power"):
                    n += 1
    # Unreadable inputs are left out, so the server may list fewer.
    assert len(sensors) <= n
    if n == 0:
        assert sensors == []


def test_sensors_from_fake_hwmon():
    tmp = tempfile.mkdtemp(prefix="test_cim-")
    root = os.path.join(tmp, "root")

    def put(rel, text):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    put("proc/cpuinfo", "processor\t: 0\nmodel name\t: Fake CPU\ncpu MHz\t\t: 1000.0\n\n")
    put("proc/meminfo", "MemTotal: 1024 kB\nMemAvailable: 512 kB\n")
    put("sys/class/hwmon/hwmon0/name", "k10temp\n")
    put("sys/class/hwmon/hwmon0/temp1_input", "52125\n")
    put("sys/class/hwmon/hwmon0/temp1_label", "Tctl\n")
    put("sys/class/hwmon/hwmon0/temp1_max", "70000\n")
    put("sys/class/hwmon/hwmon0/temp1_crit", "95000\n")
    put("sys/class/hwmon/hwmon0/fan1_input", "0\n")
    put("sys/class/hwmon/hwmon0/fan1_min", "500\n")
    c = Cimd(tmp, sysroot=root)
    try:
        s = {p["ElementName"]: p for _, p in c.ei("CIM_NumericSensor")}
        assert set(s) == {"Tctl", "k10temp fan1"}
        assert s["Tctl"]["CurrentReading"] == "52125" and s["Tctl"]["UnitModifier"] == "-3"
        assert s["Tctl"]["SensorType"] == "2" and s["Tctl"]["HealthState"] == "5"
        assert s["Tctl"]["UpperThresholdCritical"] == "95000"
        # a stopped fan below its minimum: degraded
        assert s["k10temp fan1"]["HealthState"] == "10"
        assert s["k10temp fan1"]["CurrentState"] == "Lower Non-Critical"
        host = c.ei("CIM_ComputerSystem")[0][1]
        assert host["HealthState"] == "10"
    finally:
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_gi_host_and_vm(cimd):
    rc, out, err = wbemcli("gi", "-nl", cimd.url(
        'KVC_UnitaryComputerSystem.CreationClassName="KVC_UnitaryComputerSystem",Name="esx1.example"'))
    assert rc == 0, err
    [(_, h)] = parse_nl(out)
    assert h["Name"] == "esx1.example" and h["HealthState"] == "5"
    rc, out, err = wbemcli("gi", "-nl", cimd.url(
        'KVC_VirtualMachine.CreationClassName="KVC_VirtualMachine",Name="%s"' % VMS[0]["uuid"]))
    assert rc == 0, err
    [(_, v)] = parse_nl(out)
    assert v["ElementName"] == "web01" and v["KVC_PowerState"] == "poweredOn"


def test_vms_come_and_go(cimd):
    cimd.set_vms(VMS[:1])
    names = [p["ElementName"] for _, p in cimd.ei("KVC_VirtualMachine")]
    assert names == ["web01"]
    cimd.set_vms(VMS + [dict(VMS[0], name="new01", uuid="u-3", power_state="suspended")])
    vms = {p["ElementName"]: p for _, p in cimd.ei("KVC_VirtualMachine")}
    assert set(vms) == {"web01", "db01", "new01"} and vms["new01"]["EnabledState"] == "6"


def test_errors(cimd):
    rc, out, err = wbemcli("gi", cimd.url(
        'KVC_VirtualMachine.CreationClassName="KVC_VirtualMachine",Name="no-such-vm"'))
    assert rc != 0 and "CIM_ERR_NOT_FOUND" in err
    rc, out, err = wbemcli("ei", cimd.url("CIM_NoSuchClass"))
    assert rc != 0 and "CIM_ERR_INVALID_CLASS" in err
    rc, out, err = wbemcli("ei", cimd.url("CIM_Memory", ns="root/nope"))
    assert rc != 0 and "CIM_ERR_INVALID_NAMESPACE" in err
    rc, out, err = wbemcli("ei", cimd.url("CIM_Memory", pw="wrong"))
    assert rc != 0 and "username/password" in err
    rc, out, err = wbemcli("ei", cimd.url("CIM_Memory", user="admin"))
    assert rc != 0 and "username/password" in err
    rc, out, err = wbemcli("gc", cimd.url("CIM_Memory"))
    assert rc != 0 and "CIM_ERR_NOT_SUPPORTED" in err
    # still serving
    assert len(cimd.ei("CIM_Memory")) == 1


def test_interop_namespace(cimd):
    ns = {p["Name"] for _, p in cimd.ei("CIM_Namespace", ns="root/interop")}
    assert ns == {"root/cimv2", "root/interop"}
    assert cimd.ei("CIM_Processor", ns="root/interop") == []
    rc, out, err = wbemcli("ecn", cimd.url("", ns="root/interop").rstrip(":"))
    assert rc == 0, err


def test_raw_http_bad_requests(cimd):
    import base64
    auth = "Basic " + base64.b64encode(b"root:s3cret").decode()

    def post(body, headers=None, method="POST", path="/cimom"):
        c = http.client.HTTPConnection("127.0.0.1", cimd.port, timeout=10)
        h = {"Authorization": auth, "CIMOperation": "MethodCall", "Content-Type": "application/xml"}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    st, h, _ = post(b"<CIM><MESSAGE ID='1'><SIMPLEREQ><IMETHOD")
    assert st == 400 and h.get("CIMError") == "request-not-well-formed"
    st, h, _ = post(b"\xff\x00" * 1000)
    assert st == 400
    st, h, _ = post(b"x" * (2 << 20))
    assert st == 413
    st, h, _ = post(b"", method="GET")
    assert st == 405
    st, h, _ = post(b"<CIM/>", path="/other")
    assert st == 404
    st, h, _ = post(b"<CIM/>", headers={"CIMOperation": "Nonsense"})
    assert st == 400 and h.get("CIMError") == "header-mismatch"
    st, h, _ = post(b"<CIM/>", headers={"Authorization": "Basic !!!"})
    assert st == 401 and "Basic" in h.get("WWW-Authenticate", "")
    body = ('<?xml version="1.0"?><CIM CIMVERSION="2.0" DTDVERSION="2.0"><MESSAGE ID="9" '
            'PROTOCOLVERSION="1.0"><SIMPLEREQ><IMETHODCALL NAME="EnumerateInstanceNames">'
            '<LOCALNAMESPACEPATH><NAMESPACE NAME="root"/><NAMESPACE NAME="cimv2"/></LOCALNAMESPACEPATH>'
            '<IPARAMVALUE NAME="ClassName"><CLASSNAME NAME="CIM_Memory"/></IPARAMVALUE>'
            '</IMETHODCALL></SIMPLEREQ></MESSAGE></CIM>')
    st, h, data = post(body.encode(), headers={"CIMMethod": "EnumerateInstanceNames"})
    assert st == 200 and h.get("CIMOperation") == "MethodResponse"
    assert b'<INSTANCENAME CLASSNAME="KVC_Memory">' in data


def test_https():
    tmp = tempfile.mkdtemp(prefix="test_cim-")
    c = Cimd(tmp, tls=True, vms=VMS)
    try:
        mem = c.ei("CIM_Memory")
        assert int(mem[0][1]["NumberOfBlocks"]) == meminfo("MemTotal")
        rc, out, err = wbemcli("ei", "-noverify", c.url("CIM_Memory", pw="nope"))
        assert rc != 0
    finally:
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
