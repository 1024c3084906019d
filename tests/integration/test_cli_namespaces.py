"""kvcli's vCenter namespaces against a real cluster (kvcenter-up, sim
backend): system version, host list|add|remove, cluster list, task
list|get, event list, storage filesystem list; every formatter, esxcli's
argument errors, --help, and the first-connect thumbprint prompt."""
import base64
import json
import os
import pty
import re
import select
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from kvctest import BUILDDIR, binpath, free_port, wait_for

UP = os.path.join(BUILDDIR, "kvcenter-up")
FORMATTERS = ["table", "json", "csv", "xml", "keyvalue"]
NS = "{http://www.vmware.com/Products/ESX/5.0/esxcli/}"


def skip_reason():
    for p in (UP, os.path.join(BUILDDIR, "vpxd", "vpxd"), binpath("cli/kvcli")):
        if not os.path.exists(p):
            return "%s not built" % p
    return None


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.err = open(os.path.join(tmp, "up.err"), "wb")
        self.p = subprocess.Popen([UP, "--dir", os.path.join(tmp, "c"), "--hosts", "2",
                                   "--vms", "1", "--backend", "sim", "--port", str(self.port)],
                                  stdout=subprocess.PIPE, stderr=self.err,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def wait_ready(self):
        def ready():
            if self.p.poll() is not None:
                with open(os.path.join(self.tmp, "up.err")) as f:
                    raise RuntimeError("kvcenter-up exited %s:\n%s" % (self.p.returncode, f.read()))
            return "READY" in self.lines
        wait_for(ready, 120, "kvcenter-up READY")
        get = lambda k: [l.split(" ", 1)[1] for l in self.lines if l.startswith(k + " ")]
        self.url, = get("URL")
        self.user, = get("USER")
        self.password, = get("PASSWORD")
        self.thumb, = get("THUMBPRINT")
        self.host_user = (get("HOSTUSER") or ["root"])[0]
        self.host_password = (get("HOSTPASSWORD") or [""])[0]
        self.hosts = []
        for h in get("HOST"):
            w = h.split()
            d = dict(x.split("=", 1) for x in w[2:])
            d.update(id=w[0], pid=int(w[1]))
            self.hosts.append(d)
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(self.url + "/api/session", method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (self.user, self.password)).encode()).decode())
        self.token = json.loads(urllib.request.urlopen(req, context=self.ctx, timeout=30).read())

    def rest(self, method, path):
        req = urllib.request.Request(self.url + path, method=method)
        req.add_header("vmware-api-session-id", self.token)
        raw = urllib.request.urlopen(req, context=self.ctx, timeout=30).read()
        return json.loads(raw) if raw else None

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(10)
        self.err.close()


@pytest.fixture(scope="module")
def cl():
    with tempfile.TemporaryDirectory(prefix="kvc-cli-") as d:
        c = Cluster(d)
        try:
            c.wait_ready()
            c.dir = d
            yield c
        finally:
            c.stop()


def kvcli(c, *args, home=None, thumbprint=True):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home or "/nonexistent"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    g = ["--server", c.url, "--user", c.user, "--password", c.password]
    if thumbprint:
        g += ["--thumbprint", c.thumb]
    return subprocess.run([binpath("cli/kvcli")] + g + list(args), capture_output=True,
                          text=True, timeout=60, env=e, stdin=subprocess.DEVNULL)


def ok(c, *args):
    r = kvcli(c, *args)
    assert r.returncode == 0, (args, r.stderr)
    assert r.stderr == ""
    return r.stdout


def table_rows(out):
    """A table with a dashed rule: header, rule, rows, split on 2+ spaces."""
    lines = out.rstrip("\n").split("\n")
    assert re.fullmatch(r"-+( +-+)*", lines[1]), out
    return [re.split(r"\s{2,}", l.strip()) for l in [lines[0]] + lines[2:]]


def check_all_formatters(c, args, type_name, keys, want):
    """Every formatter prints the same rows; WANT: one dict key->str per row."""
    js = json.loads(ok(c, "--formatter=json", *args))
    assert isinstance(js, list)
    got = [{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in row.items()}
           for row in js]
    for w in want:
        assert any(all(g.get(k) == v for k, v in w.items()) for g in got), (w, got)
    csv = ok(c, "--formatter=csv", *args).rstrip("\n").split("\n")
    assert csv[0] == ",".join(sorted(keys)) + ","
    assert len(csv) == len(js) + 1
    kv = ok(c, "--formatter=keyvalue", *args).rstrip("\n").split("\n")
    assert len(kv) == len(js) * len(keys)
    assert all(re.fullmatch(r"%s\.\w+\.(string|integer|boolean)=.*" % type_name, l) for l in kv)
    xml = ok(c, "--formatter=xml", *args)
    root = ET.fromstring(xml)
    assert root.tag == NS + "output"
    structs = root.findall("./%sroot/%slist/%sstructure" % (NS, NS, NS))
    assert len(structs) == len(js)
    assert all(s.get("typeName") == type_name for s in structs)
    assert [f.get("name") for f in structs[0].findall(NS + "field")] == keys
    rows = table_rows(ok(c, *args))
    assert len(rows) == len(js) + 1
    return js


def test_system_version_get_from_vpxd(cl):
    assert ok(cl, "system", "version", "get") == (
        "   Product: kvcenter\n   Version: 0.1.0\n   Build: 0.1.0\n   Update: 0\n   Patch: 0\n")
    assert ok(cl, "--formatter=keyvalue", "system", "version", "get").startswith(
        "VersionGet.Product.string=kvcenter\nVersionGet.Version.string=0.1.0\n")
    js = json.loads(ok(cl, "--formatter=json", "system", "version", "get"))
    assert js["Product"] == "kvcenter"
    root = ET.fromstring(ok(cl, "--formatter=xml", "system", "version", "get"))
    assert root.find("./%sroot/%sstructure" % (NS, NS)).get("typeName") == "VersionGet"
    assert ok(cl, "--formatter=csv", "system", "version", "get").startswith(
        "Build,Patch,Product,Update,Version,\n")


def test_host_list(cl):
    js = check_all_formatters(cl, ["host", "list"], "Host",
                              ["Name", "HostID", "ConnectionState", "PowerState"],
                              [{"HostID": h["id"], "ConnectionState": "CONNECTED"}
                               for h in cl.hosts])
    assert sorted(r["Name"] for r in js) == ["esx-0", "esx-1"]
    rows = table_rows(ok(cl, "host", "list"))
    assert rows[0] == ["Name", "Host ID", "Connection State", "Power State"]


def test_cluster_list(cl):
    check_all_formatters(cl, ["cluster", "list"], "Cluster",
                         ["Name", "ClusterID", "HAEnabled", "DRSEnabled"],
                         [{"Name": "Cluster", "HAEnabled": "true", "DRSEnabled": "true"}])
    assert table_rows(ok(cl, "cluster", "list"))[0] == ["Name", "Cluster ID", "HA Enabled",
                                                        "DRS Enabled"]


def test_storage_filesystem_list(cl):
    ds = cl.rest("GET", "/api/vcenter/datastore")
    js = check_all_formatters(
        cl, ["storage", "filesystem", "list"], "FilesystemVolume",
        ["MountPoint", "VolumeName", "UUID", "Mounted", "Type", "Size", "Free"],
        [{"VolumeName": d["name"], "UUID": d["datastore"], "Mounted": "true",
          "MountPoint": "/vmfs/volumes/" + d["datastore"], "Size": str(d["capacity"])}
         for d in ds])
    assert len(js) == len(ds) == 3
    assert table_rows(ok(cl, "storage", "filesystem", "list"))[0] == [
        "Mount Point", "Volume Name", "UUID", "Mounted", "Type", "Size", "Free"]


def test_task_list_and_get(cl):
    vm = cl.rest("GET", "/api/vcenter/vm")[0]["vm"]
    task = cl.rest("POST", "/api/vcenter/vm/%s/power?action=stop&vmw-task=true" % vm)
    wait_for(lambda: cl.rest("GET", "/api/cis/tasks/" + task)["status"] == "SUCCEEDED", 30,
             "the power-off task")
    check_all_formatters(cl, ["task", "list"], "Task",
                         ["TaskID", "Operation", "Target", "Status", "Progress", "User",
                          "StartTime", "EndTime"],
                         [{"TaskID": task, "Operation": "stop", "Target": vm,
                           "Status": "SUCCEEDED", "Progress": "100", "User": cl.user}])
    out = ok(cl, "task", "get", "-t", task)
    assert "   Task ID: %s\n" % task in out
    assert "   Status: SUCCEEDED\n" in out
    assert "   Service: com.vmware.vcenter.vm.power\n" in out
    kv = ok(cl, "--formatter=keyvalue", "task", "get", "--task", task)
    assert "TaskGet.Progress.integer=100\n" in kv
    r = kvcli(cl, "task", "get", "-t", "task-999999")
    assert r.returncode == 1 and r.stderr == "Error: task task-999999 not found\n"


def test_event_list_filters(cl):
    vm = cl.rest("GET", "/api/vcenter/vm")[0]["vm"]
    check_all_formatters(cl, ["event", "list", "--type", "HostAddedEvent"], "Event",
                         ["Seq", "Time", "Severity", "Type", "Object", "User", "Message"],
                         [{"Type": "HostAddedEvent", "Object": h["id"]} for h in cl.hosts[:1]])
    js = json.loads(ok(cl, "--formatter=json", "event", "list", "--object", vm))
    assert js and all(e["Object"] == vm for e in js)
    assert "VmCreatedEvent" in [e["Type"] for e in js]
    seqs = [e["Seq"] for e in js]
    assert seqs == sorted(seqs)
    js = json.loads(ok(cl, "--formatter=json", "event", "list", "--type", "HostAddedEvent"))
    assert len(js) >= 2 and {e["Type"] for e in js} == {"HostAddedEvent"}
    first = json.loads(ok(cl, "--formatter=json", "event", "list", "--limit", "2"))
    assert [e["Seq"] for e in first] == [1, 2]
    after = json.loads(ok(cl, "--formatter=json", "event", "list", "--since", "2", "-l", "1"))
    assert [e["Seq"] for e in after] == [3]
    rows = table_rows(ok(cl, "event", "list", "-l", "3"))
    assert rows[0] == ["Seq", "Time", "Severity", "Type", "Object", "User", "Message"]
    assert len(rows) == 4


def test_host_remove_then_add_with_thumbprint(cl):
    h = cl.hosts[1]
    cluster = cl.rest("GET", "/api/vcenter/cluster")[0]["cluster"]
    assert ok(cl, "host", "remove", "--host", h["id"]) == ""
    assert h["id"] not in [x["host"] for x in cl.rest("GET", "/api/vcenter/host")]
    # Without a thumbprint: nothing is added, the thumbprint is shown.
    cred = ["-u", cl.host_user, "-w", cl.host_password]
    r = kvcli(cl, "host", "add", "-n", "127.0.0.1", "-p", h["port"], "-f", cluster, *cred)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("Error: the host's certificate thumbprint is %s" % h["thumbprint"])
    assert len(cl.rest("GET", "/api/vcenter/host")) == 1
    # A wrong one is refused the same way.
    r = kvcli(cl, "host", "add", "-n", "127.0.0.1", "-p", h["port"], "-f", cluster, *cred,
              "-t", ":".join(["AB"] * 32))
    assert r.returncode == 1 and "not the one given" in r.stderr
    out = ok(cl, "host", "add", "--hostname", "127.0.0.1", "--port", h["port"],
             "--folder", cluster, "--thumbprint", h["thumbprint"], *cred)
    m = re.fullmatch(r"   Host ID: (host-\d+)\n", out)
    assert m, out
    wait_for(lambda: {x["host"]: x["connection_state"] for x in cl.rest(
        "GET", "/api/vcenter/host")}.get(m.group(1)) == "CONNECTED", 30, "the host connected")


@pytest.mark.parametrize("args,error,usage", [
    (["event", "list", "--limit", "abc"],
     "Error: While processing '--limit'. Expected an integer in the range (1 - 10000), "
     "got 'abc'.\n", "Usage: kvcli event list [cmd options]"),
    (["event", "list", "-l", "0"],
     "Error: While processing '--limit'. Expected an integer in the range (1 - 10000), "
     "got '0'.\n", "Usage: kvcli event list [cmd options]"),
    (["host", "add", "-p", "902"], "Error: Missing required parameter -n|--hostname\n",
     "Usage: kvcli host add [cmd options]"),
    (["host", "add", "-n", "x", "--port", "70000"],
     "Error: While processing '--port'. Expected an integer in the range (1 - 65535), "
     "got '70000'.\n", "Usage: kvcli host add [cmd options]"),
    (["task", "get", "--bogus"], "Error: Invalid option --bogus\n",
     "Usage: kvcli task get [cmd options]"),
    (["cluster", "frob"], "Error: Unknown command or namespace cluster frob\n",
     "Usage: kvcli cluster {cmd} [cmd options]"),
], ids=["limit-not-int", "limit-range", "missing-required", "port-range", "unknown-option",
        "unknown-command"])
def test_bad_arguments_need_no_server(args, error, usage):
    # No cluster needed: bad arguments never reach the network.
    r = subprocess.run([binpath("cli/kvcli"), "--server", "https://127.0.0.1:9"] + args,
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith(error), r.stderr
    assert usage in r.stderr


def test_bad_ids_never_reach_a_path(cl):
    r = kvcli(cl, "host", "remove", "--host", "../session")
    assert r.returncode == 1
    assert r.stderr == ("Error: While processing '--host'. '../session' is not a host id "
                        "(host-28).\n")
    assert len(cl.rest("GET", "/api/vcenter/host")) >= 1


def test_help_at_every_level():
    def help_(*words):
        r = subprocess.run([binpath("cli/kvcli")] + list(words) + ["--help"],
                           capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        return r.stdout
    top = help_()
    for ns in ("host", "cluster", "task", "event", "storage"):
        assert re.search(r"^  %s +\S" % ns, top, re.M), top
    assert "Available Commands:\n  list " in help_("host")
    assert re.search(r"^  add +Add a host", help_("host"), re.M)
    assert "Available Namespaces:\n  filesystem " in help_("storage")
    assert "Available Commands:\n  list " in help_("storage", "filesystem")
    out = help_("host", "add")
    assert out.startswith("Usage: kvcli host add [cmd options]\n")
    assert "-t|--thumbprint=<str>" in out and "-n|--hostname=<str>" in out
    assert "(required)" in out
    assert "-l|--limit=<long>" in help_("event", "list")


def run_pty(argv, env, answer, timeout=30):
    """Runs ARGV on a pseudo-terminal; answers the first prompt with ANSWER."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    out = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(fd, answer.encode() + b"\n")
                answered = True
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_first_connect_prompts_for_the_thumbprint(cl):
    home = os.path.join(cl.dir, "home")
    os.makedirs(home, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": home}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    argv = [binpath("cli/kvcli"), "--server", cl.url, "--user", cl.user, "--password",
            cl.password, "cluster", "list"]
    known = os.path.join(home, ".config", "kvcli", "known_servers")
    # Declined: nothing remembered, nothing run.
    rc, out = run_pty(argv, env, "n")
    assert rc == 1
    assert "The server %s is not known." % cl.url in out
    assert cl.thumb in out and "Trust it and remember it? [y/N]" in out
    assert "Cluster" not in out.split("[y/N]")[1]
    assert not os.path.exists(known)
    # Accepted: remembered, and the command runs.
    rc, out = run_pty(argv, env, "y")
    assert rc == 0, out
    assert "domain-c" in out.split("[y/N]")[1]
    with open(known) as f:
        assert f.read() == "%s %s\n" % (cl.url, cl.thumb)
    # Next time: no prompt.
    rc, out = run_pty(argv, env, "n")
    assert rc == 0 and "[y/N]" not in out and "domain-c" in out


def test_vm_create_and_power(cl):
    cluster = cl.rest("GET", "/api/vcenter/cluster")[0]["cluster"]
    out = ok(cl, "vm", "create", "-n", "cli-vm-1", "-c", "2", "-m", "96", "--cluster", cluster)
    m = re.fullmatch(r"   VM ID: (vm-\d+)\n", out)
    assert m, out
    vm = m.group(1)
    got = cl.rest("GET", "/api/vcenter/vm/" + vm)
    assert (got["name"], got["cpu"]["count"], got["memory"]["size_MiB"]) == ("cli-vm-1", 2, 96)
    assert ok(cl, "vm", "power", "get", "-v", vm) == "   Power State: POWERED_OFF\n"
    assert ok(cl, "vm", "power", "on", "--vm", vm) == ""
    assert cl.rest("GET", "/api/vcenter/vm/%s/power" % vm)["state"] == "POWERED_ON"
    assert ok(cl, "--formatter=keyvalue", "vm", "power", "get", "-v", vm) == \
        "VmPowerGet.PowerState.string=POWERED_ON\n"
    assert json.loads(ok(cl, "--formatter=json", "vm", "power", "get", "-v", vm)) == \
        {"PowerState": "POWERED_ON"}
    assert ok(cl, "--formatter=csv", "vm", "power", "get", "-v", vm) == \
        "PowerState,\nPOWERED_ON,\n"
    root = ET.fromstring(ok(cl, "--formatter=xml", "vm", "power", "get", "-v", vm))
    assert root.find("./%sroot/%sstructure" % (NS, NS)).get("typeName") == "VmPowerGet"
    # Already on: the API's error, exit 1, nothing changed.
    r = kvcli(cl, "vm", "power", "on", "-v", vm)
    assert r.returncode == 1 and r.stderr.startswith("Error: ") and r.stdout == ""
    assert ok(cl, "vm", "power", "suspend", "-v", vm) == ""
    assert ok(cl, "vm", "power", "get", "-v", vm) == "   Power State: SUSPENDED\n"
    assert ok(cl, "vm", "power", "off", "-v", vm) == ""
    assert cl.rest("GET", "/api/vcenter/vm/%s/power" % vm)["state"] == "POWERED_OFF"
    r = kvcli(cl, "vm", "power", "get", "-v", "vm-999999")
    assert r.returncode == 1 and "vm-999999" in r.stderr


def test_vm_argument_errors():
    def run(*args):
        return subprocess.run([binpath("cli/kvcli"), "--server", "https://127.0.0.1:9"] +
                              list(args), capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
    r = run("vm", "create", "-n", "x", "--cpus", "0")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: While processing '--cpus'. Expected an integer in the "
                               "range (1 - 64), got '0'.\n\nUsage: kvcli vm create")
    r = run("vm", "power", "on")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: Missing required parameter -v|--vm\n")
    r = run("vm", "power", "on", "-v", "vm-1/../../session")
    assert r.returncode == 1
    assert "is not a VM id" in r.stderr


def test_hardware_and_maintenance_mode(cl):
    h = cl.hosts[0]["id"]
    detail = cl.rest("GET", "/api/kvc/host/" + h)
    assert detail["memory_bytes"] > 0 and detail["cpu_cores"] > 0
    assert ok(cl, "hardware", "memory", "get", "--host", h) == \
        "   Physical Memory: %d Bytes\n" % detail["memory_bytes"]
    assert ok(cl, "hardware", "cpu", "global", "get", "-o", h) == \
        "   CPU Cores: %d\n   CPU MHz: %d\n" % (detail["cpu_cores"], detail["cpu_mhz"])
    assert ok(cl, "--formatter=keyvalue", "hardware", "memory", "get", "-o", h) == \
        "MemoryGet.PhysicalMemory.string=%d Bytes\n" % detail["memory_bytes"]
    assert ok(cl, "system", "maintenanceMode", "get", "-o", h) == \
        "   Maintenance Mode: Disabled\n"
    assert ok(cl, "system", "maintenanceMode", "set", "--enable", "true", "-o", h) == ""
    assert cl.rest("GET", "/api/kvc/host/" + h)["in_maintenance"] is True
    assert json.loads(ok(cl, "--formatter=json", "system", "maintenanceMode", "get",
                         "-o", h)) == {"MaintenanceMode": "Enabled"}
    # Its running VMs went elsewhere first.
    assert not [v for v in cl.rest("GET", "/api/vcenter/vm?hosts=" + h)
                if v["power_state"] == "POWERED_ON"]
    assert ok(cl, "system", "maintenanceMode", "set", "-e", "false", "-o", h) == ""
    assert ok(cl, "system", "maintenanceMode", "get", "-o", h) == \
        "   Maintenance Mode: Disabled\n"
    r = kvcli(cl, "system", "maintenanceMode", "set", "-e", "maybe", "-o", h)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: While processing '--enable'. Expected a boolean")
    assert "Usage: kvcli system maintenanceMode set [cmd options]" in r.stderr
    r = kvcli(cl, "hardware", "memory", "get", "-o", "host-999999")
    assert r.returncode == 1 and r.stderr == "Error: host host-999999 not found\n"
