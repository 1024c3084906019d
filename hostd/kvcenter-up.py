#!/usr/bin/python3
"""kvcenter-up: a whole kvcenter cluster on loopback, for demos, tests and
scripts.

    kvcenter-up --dir DIR --hosts N [--backend kvm|sim] [--vms M] [--port P]
                [--ssh-key FILE.pub] [--agentx SOCKET] [--no-cim]

Starts vpxd and N hosts (each host in its own process group, led by its
hostd; the host's CIM server kvc-cimd, and with the kvm backend its vmkd,
join that group), then through vpxd's REST API (as any script would)
creates a datacenter and a cluster, adds the hosts with their thumbprints,
and creates M running VMs on the shared datastore and the "VM Network" port
group.  Every host runs its SSH shell and its HTTPS endpoint for kvcli; the
hosts' root password is HOSTPASSWORD, and --ssh-key authorizes a public key
for root on every host.  --agentx attaches vpxd's SNMP subagent to the
snmpd master listening on SOCKET.  Prints, one per line:

    URL https://127.0.0.1:P
    USER administrator@vsphere.local
    PASSWORD <password>
    THUMBPRINT <SHA-256 of vpxd's certificate>
    HOSTUSER root
    HOSTPASSWORD <the hosts' root password>
    HOST <host-id> <pid> backend=... port=... uuid=... thumbprint=... ssh=<port> api=https://127.0.0.1:<port> cim=http://127.0.0.1:<port>
    READY

(cim=- when kvc-cimd is not installed or --no-cim was given.)

and stays in the foreground; SIGTERM or SIGINT stops everything it started
(by process group, each led by a PID it started) and it exits 0.  Any
failure during set-up stops what was started and exits 1 with the reason on
stderr.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid as uuidlib

HERE = os.path.dirname(os.path.abspath(__file__))
SBINDIR = "@sbindir@"
LIBEXECDIR = "@libexecdir@/kvcenter"
PKGDATADIR = "@pkgdatadir@"
ADMIN = "administrator@vsphere.local"


class Fail(Exception):
    pass


def log(msg):
    sys.stderr.write("kvcenter-up: %s\n" % msg)
    sys.stderr.flush()


def find_prog(env, rel, name):
    """A program next to us in the build tree, else the installed one."""
    p = os.environ.get(env)
    if p:
        return p
    for cand in (os.path.join(HERE, rel), os.path.join(SBINDIR, name)):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise Fail("%s not found (looked for %s and %s; set %s)"
               % (name, os.path.join(HERE, rel), os.path.join(SBINDIR, name), env))


def find_file(env, rel, installed):
    """A data file or helper program: the build tree's, else the installed one."""
    p = os.environ.get(env)
    if p:
        return p
    for cand in (os.path.join(HERE, rel), installed):
        if os.path.isfile(cand):
            return cand
    raise Fail("%s not found (looked for %s and %s; set %s)"
               % (os.path.basename(rel), os.path.join(HERE, rel), installed, env))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail("timed out after %ds waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Proc:
    """A process we started, leading its own process group."""

    def __init__(self, argv, logpath, what, pgid=None):
        """PGID None: the process leads a new process group;
        otherwise it joins the group PGID (a host's second process)."""
        self.what = what
        self.logpath = logpath
        self._log = open(logpath, "ab")
        # A new group in our session (not a new session), so that a host's
        # second process can join its leader's group.
        grp = dict(process_group=0 if pgid is None else pgid)
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                  stderr=subprocess.STDOUT, **grp)
        self.pid = self.p.pid
        self.pgid = self.pid if pgid is None else pgid

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def check(self):
        if self.p.poll() is not None:
            raise Fail("%s exited (status %s); last lines of %s:\n%s"
                       % (self.what, self.p.returncode, self.logpath,
                          "\n".join(self.log().splitlines()[-15:])))

    def wait_log(self, rx, timeout):
        rx = re.compile(rx)

        def got():
            m = rx.search(self.log())
            if not m:
                self.check()
            return m
        return wait_for(got, timeout, "%s: %s" % (self.what, rx.pattern))

    def signal_group(self, sig):
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=10):
        if self.p.poll() is None:
            if self.pgid == self.pid:
                self.signal_group(signal.SIGTERM)
            else:
                self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (vmkd, vmx, strays) goes too; a
        # process that joined another's group leaves that group to its leader.
        if self.pgid == self.pid:
            self.signal_group(signal.SIGKILL)
        elif self.p.poll() is None:
            self.p.kill()
        if self.p.poll() is None:
            self.p.wait(5)
        self._log.close()


class Api:
    def __init__(self, base, user, password):
        self.base = base
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE      # we pin by thumbprint instead
        self.token = None
        tok = self.call("POST", "/api/session", auth=(user, password))
        self.token = tok

    def call(self, method, path, body=None, auth=None, ok=(200, 201, 204)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % auth).encode()).decode())
        if self.token:
            req.add_header("vmware-api-session-id", self.token)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        if status not in ok:
            hint = ""
            if status == 404 and b"NOT_FOUND" not in raw:
                hint = " (vpxd has no such route yet)"
            raise Fail("%s %s -> %d%s: %s" % (method, path, status, hint,
                                             raw.decode("utf-8", "replace")[:400]))
        return json.loads(raw) if raw else None


def cert_thumbprint(port):
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    der = ssl.PEM_cert_to_DER_cert(pem)
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))


def kvm_programs():
    """vmkd, vmx and the test guest for the kvm backend (Fail if one is missing)."""
    return dict(vmkd=find_prog("KVC_VMKD", "vmkernel-kvm/vmkd", "vmkd"),
                vmx=find_file("KVC_VMX", "vmkernel-kvm/vmx", os.path.join(LIBEXECDIR, "vmx")),
                guest=find_file("KVC_GUEST", "vmkernel-kvm/guest/kvc-guest.elf",
                                os.path.join(PKGDATADIR, "guest", "kvc-guest.elf")))


VXLAN_VNI = 5001


_vteps = []


def vtep(i):
    """Host I's VXLAN endpoint, "127.0.0.1:PORT": a UDP port of its own,
    free when chosen, so that clusters running side by side (tests, demos)
    never share one."""
    while len(_vteps) <= i:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        _vteps.append(s.getsockname()[1])
        s.close()
    return "127.0.0.1:%d" % _vteps[i]


def start_vmkd(progs, hd, name, pgid, index=None, nhosts=0):
    """One vmkd for one host, in that host's process group PGID (its hostd's),
    so that killing the group kills the host with its VMs, as a power cut
    would.  With INDEX, "VM Network" is a distributed port group: a VXLAN
    segment (VNI 5001) over UDP between the hosts' vmkd, so VMs on different
    hosts share one L2 network and a migrated VM's peers keep reaching it.
    Returns (Proc, socket path)."""
    os.makedirs(hd, exist_ok=True)
    sock = os.path.join(hd, "vmkd.sock")
    conf = os.path.join(hd, "vmkd.conf")
    with open(conf, "w") as f:
        f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\n'
                'ready-timeout = 30s\nstop-timeout = 5s\nstop-vms-on-exit = true\n'
                '[cgroup]\nparent = "kvcenter-up-%d-%s"\nremove-parent-on-exit = true\n'
                % (os.path.join(hd, "vmkd-state"), sock, progs["vmx"], os.getpid(), name))
        if index is not None and nhosts > 1:
            peers = ",".join(vtep(j) for j in range(nhosts) if j != index)
            addr, port = vtep(index).split(":")
            f.write('[vswitch]\nname = "vSwitch0"\nvxlan-local = "%s"\nvxlan-port = %s\n'
                    '[portgroup "VM Network"]\nvlan = 0\nvni = %d\nvteps = "%s"\n'
                    % (addr, port, VXLAN_VNI, peers))
    p = Proc([progs["vmkd"], "-f", conf], os.path.join(hd, "vmkd.log"), "vmkd %s" % name,
             pgid=pgid)
    return p, sock


def kvm_backend_works(hostd, tmp):
    """/dev/kvm usable, root (vmkd's cgroups), and this build's kvm backend
    able to start a host on a vmkd of its own."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return False, "/dev/kvm not usable: %s" % e.strerror
    if os.geteuid() != 0:
        return False, "vmkd needs root (cgroups)"
    try:
        progs = kvm_programs()
    except Fail as e:
        return False, str(e)
    os.makedirs(tmp, exist_ok=True)
    vm, sock = start_vmkd(progs, tmp, "check", None)
    try:
        try:
            vm.wait_log(r"vmkd ready", 20)
        except Fail as e:
            return False, "vmkd cannot start here: %s" % str(e).splitlines()[0]
        r = subprocess.run([hostd, "--backend", "kvm", "--state-dir", os.path.join(tmp, "state"),
                            "--port", "0", "--vmkd-socket", sock, "--guest-image", progs["guest"],
                            "--check-start"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
    finally:
        vm.stop()
    if r.returncode != 0:
        last = [l for l in r.stdout.decode("utf-8", "replace").splitlines() if "ERR" in l]
        return False, "the kvm backend cannot start here: %s" % (
            last[0].split(": ", 2)[-1] if last else "exit %d" % r.returncode)
    return True, ""


def main():
    ap = argparse.ArgumentParser(prog="kvcenter-up", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="state directory for the whole cluster "
                    "(what an earlier run left there is removed first)")
    ap.add_argument("--hosts", type=int, required=True, help="number of hosts")
    ap.add_argument("--backend", choices=["kvm", "sim"], help="default: kvm where it works")
    ap.add_argument("--vms", type=int, default=0, help="running VMs to create")
    ap.add_argument("--port", type=int, default=0, help="vpxd HTTPS port (default: 8443 "
                    "if free, else any free port)")
    ap.add_argument("--heartbeat", type=int, default=1000, help="host heartbeat period, ms")
    ap.add_argument("--lease-ms", type=int, default=0, help="VM lease duration, ms "
                    "(default: hostd's); HA restarts a dead host's VMs once they expire")
    ap.add_argument("--ssh-key", help="a public key (FILE.pub) that may log in as root on "
                    "every host's SSH shell")
    ap.add_argument("--agentx", help="AgentX socket of a running snmpd master "
                    "(unix:/path, /path or tcp:host:port): vpxd's SNMP subagent attaches there")
    ap.add_argument("--no-cim", action="store_true", help="no CIM server on the hosts")
    a = ap.parse_args()
    if a.hosts < 1 or a.hosts > 64:
        ap.error("--hosts: 1..64")
    if a.vms < 0 or a.vms > 1000:
        ap.error("--vms: 0..1000")
    if a.port < 0 or a.port > 65535:
        ap.error("--port: 0..65535")
    a.ssh_key_text = None
    if a.ssh_key:
        try:
            with open(a.ssh_key) as f:
                a.ssh_key_text = f.read()
        except OSError as e:
            ap.error("--ssh-key %s: %s" % (a.ssh_key, e.strerror))
        if not re.match(r"^(ssh-|ecdsa-|sk-)\S+ \S+", a.ssh_key_text):
            ap.error("--ssh-key %s: not an OpenSSH public key" % a.ssh_key)
    if a.agentx is not None and (not a.agentx or '"' in a.agentx or "\n" in a.agentx):
        ap.error("--agentx: a socket address (unix:/path, /path or tcp:host:port)")

    procs = []
    stopping = []

    def on_signal(sig, frame):
        stopping.append(sig)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 0
    try:
        cim = run(a, procs)
        print("READY", flush=True)
        next_vms = time.monotonic() + 2
        while True:
            for p in procs:
                if p.p.poll() is not None:
                    log("%s (pid %d) exited with status %s" % (p.what, p.pid, p.p.returncode))
                    procs.remove(p)
                    break
            if cim and time.monotonic() >= next_vms:
                cim.refresh()
                next_vms = time.monotonic() + 2
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except Fail as e:
        log(str(e))
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Hosts first (their VMs with them), then vpxd.
        for p in reversed(procs):
            p.stop()
    return rc


class CimVms:
    """The VM lists the hosts' kvc-cimd read (--vms FILE.json, read again on
    every request), kept current from vpxd's inventory."""

    def __init__(self, api):
        self.api = api
        self.hosts = []             # (host id, path)
        self.failing = False

    def add(self, host_id, path):
        self.hosts.append((host_id, path))

    def refresh(self):
        try:
            for hid, path in self.hosts:
                rows = self.api.call("GET", "/api/vcenter/vm?hosts=%s" % hid)
                vms = [{"name": r.get("name", ""), "uuid": r.get("vm", ""),
                        "power_state": {"POWERED_ON": "poweredOn",
                                        "SUSPENDED": "suspended"}.get(r.get("power_state"),
                                                                      "poweredOff"),
                        "guest_os": "", "memory_mb": r.get("memory_size_MiB", 0),
                        "vcpus": r.get("cpu_count", 0)} for r in rows]
                write_private(path, json.dumps(vms))
            self.failing = False
        except (Fail, OSError, ValueError) as e:
            if not self.failing:
                log("cannot refresh the hosts' CIM VM lists: %s" % e)
            self.failing = True


def write_private(path, text):
    """PATH with TEXT, mode 0600, replaced whole (readers never see half)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.rename(tmp, path)


MARKER = ".kvcenter-up"


def fresh_dir(d):
    """Each run starts the same cluster from scratch: what an earlier run left
    in D (it holds MARKER) is removed first; a non-empty D that kvcenter-up did
    not make is refused, so nothing else is ever deleted."""
    os.makedirs(d, exist_ok=True)
    mark = os.path.join(d, MARKER)
    left = [n for n in os.listdir(d) if n != MARKER]
    if left and not os.path.exists(mark):
        raise Fail("--dir %s is not empty and was not made by kvcenter-up; "
                   "give an empty or new directory" % d)
    for n in left:
        p = os.path.join(d, n)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    with open(mark, "w") as f:
        f.write("made by kvcenter-up; removed and remade by its next run\n")


def run(a, procs):
    d = os.path.abspath(a.dir)
    fresh_dir(d)
    vpxd = find_prog("KVC_VPXD", "vpxd/vpxd", "vpxd")
    hostd = find_prog("KVC_HOSTD", "hostd/hostd", "hostd")
    backend = a.backend
    if backend is None:
        ok, why = kvm_backend_works(hostd, os.path.join(d, "kvm-check"))
        backend = "kvm" if ok else "sim"
        if not ok:
            log("using the sim backend: %s" % why)
    elif backend == "kvm":
        ok, why = kvm_backend_works(hostd, os.path.join(d, "kvm-check"))
        if not ok:
            raise Fail(why)
    progs = kvm_programs() if backend == "kvm" else None
    cimd = None
    if not a.no_cim:
        try:
            cimd = find_prog("KVC_CIMD", "hostd/kvc-cimd", "kvc-cimd")
        except Fail as e:
            log("no CIM server on the hosts: %s" % e)
    port = a.port or (8443 if port_free(8443) else free_port())
    shared = os.path.join(d, "datastores", "shared")
    os.makedirs(shared, exist_ok=True)

    # vpxd, with a password we choose so we can print it.
    password = secrets.token_urlsafe(12)
    conf = os.path.join(d, "vpxd.conf")
    with open(conf, "w") as f:
        f.write('[server]\ndir = "%s"\nlisten = "127.0.0.1"\nport = %d\nlog = "%s"\n'
                '[auth]\nadmin-user = "%s"\nadmin-password = "%s"\n'
                '[hosts]\nheartbeat = %dms\nstats-interval = 20s\n'
                % (os.path.join(d, "vpxd"), port, os.path.join(d, "vpxd.log"), ADMIN,
                   password, a.heartbeat))
        if a.agentx:
            f.write('[snmp]\nagentx = "%s"\nping-interval = 1\n' % a.agentx)
    os.chmod(conf, 0o600)
    vp = Proc([vpxd, "-f", conf], os.path.join(d, "vpxd.out"), "vpxd")
    procs.append(vp)

    def listening():
        vp.check()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_for(listening, 30, "vpxd on port %d" % port)
    url = "https://127.0.0.1:%d" % port
    thumb = cert_thumbprint(port)

    # Hosts: one hostd per host, each its own process group.  The hosts'
    # root password goes in a config file (0600), not on a command line.
    host_password = secrets.token_urlsafe(12)
    hosts = []
    for i in range(a.hosts):
        hd = os.path.join(d, "hosts", "esx-%d" % i)
        os.makedirs(os.path.join(hd, "local"), exist_ok=True)
        state = os.path.join(hd, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        hconf = os.path.join(hd, "hostd.conf")
        write_private(hconf, '[hostd]\nadmin_user = "root"\nadmin_password = "%s"\n'
                      % host_password)
        if a.ssh_key_text:
            write_private(os.path.join(state, "authorized_keys"), a.ssh_key_text)
        # Free ports chosen by the programs themselves (no race with
        # anything else on the machine); they say which in their logs.
        ports = dict(ssh=None, api=None, cim=None)
        argv = [hostd, "-c", hconf, "--backend", backend, "--state-dir", state,
                "--ssh-port", "any", "--api-port", "any",
                "--port", "0", "--name", "esx-%d" % i, "--heartbeat", str(a.heartbeat),
                *(["--lease-ms", str(a.lease_ms)] if a.lease_ms > 0 else []),
                "--datastore", "shared=%s:shared" % shared,
                "--datastore", "local-esx-%d=%s" % (i, os.path.join(hd, "local")),
                "--network", "VM Network@vSwitch0:0"]
        if backend == "kvm":
            # hostd leads the host's group and waits for its vmkd's socket;
            # vmkd (and the vmx it starts) join that group.
            sock = os.path.join(hd, "vmkd.sock")
            argv += ["--vmkd-socket", sock, "--guest-image", progs["guest"]]
        p = Proc(argv, os.path.join(hd, "hostd.log"), "hostd esx-%d" % i)
        p.ports = ports
        p.dir = hd
        procs.append(p)
        hosts.append(p)
        if cimd:
            # The host's CIM server, in the host's process group: killing the
            # group (the host "loses power") takes it down too.
            pwfile = os.path.join(hd, "cim.password")
            write_private(pwfile, host_password + "\n")
            p.cim_vms = os.path.join(hd, "cim-vms.json")
            write_private(p.cim_vms, "[]")
            c = Proc([cimd, "--listen", "127.0.0.1:0", "--user", "root",
                      "--password-file", pwfile, "--hostname", "esx-%d" % i,
                      "--vms", p.cim_vms], os.path.join(hd, "cimd.log"),
                     "kvc-cimd esx-%d" % i, pgid=p.pid)
            procs.append(c)
            p.cimd = c
        if backend == "kvm":
            vm, _ = start_vmkd(progs, hd, "esx-%d" % i, p.pid, index=i, nhosts=a.hosts)
            # Stopped before its hostd (procs is stopped in reverse), which
            # is what stop-vms-on-exit wants: the demo leaves no VM behind.
            procs.append(vm)
    info = []
    for p in hosts:
        m = p.wait_log(r"host ready index=0 name=(\S+) uuid=(\S+) port=(\d+) thumbprint=(\S+)", 30)
        info.append(dict(name=m.group(1), uuid=m.group(2), port=int(m.group(3)),
                         thumbprint=m.group(4), proc=p))
        p.ports["ssh"] = int(p.wait_log(r"ssh ready index=0 name=\S+ port=(\d+) ", 30).group(1))
        p.ports["api"] = int(p.wait_log(r"api ready index=0 name=\S+ port=(\d+) ", 30).group(1))
        if cimd:
            p.ports["cim"] = int(p.cimd.wait_log(r"ready on port (\d+)", 30).group(1))

    api = Api(url, ADMIN, password)
    dc = api.call("POST", "/api/vcenter/datacenter", {"name": "Datacenter"})
    cl = api.call("POST", "/api/kvc/cluster", {"name": "Cluster", "folder": dc,
                                              # HA needs a second host to restart on;
                                              # with one, its admission control would
                                              # refuse every power-on.
                                              "ha_enabled": a.hosts > 1, "drs_enabled": True})
    for h in info:
        h["id"] = api.call("POST", "/api/vcenter/host", {
            "hostname": "127.0.0.1", "port": h["port"], "user_name": "root",
            "password": host_password, "folder": cl, "thumbprint_verification": "THUMBPRINT",
            "thumbprint": h["thumbprint"]})

    def all_connected():
        rows = api.call("GET", "/api/vcenter/host")
        st = {r.get("host"): r.get("connection_state") for r in rows}
        return all(st.get(h["id"]) == "CONNECTED" for h in info)
    wait_for(all_connected, 30, "every host CONNECTED")

    def shared_ds():
        rows = api.call("GET", "/api/vcenter/datastore?names=shared")
        return rows[0]["datastore"] if rows else None
    ds = wait_for(shared_ds, 30, "the shared datastore")

    def vm_network():
        rows = api.call("GET", "/api/vcenter/network?names=VM%20Network")
        return rows[0]["network"] if rows else None
    net = wait_for(vm_network, 30, "the VM Network port group")
    for i in range(a.vms):
        vm = api.call("POST", "/api/vcenter/vm", {
            "name": "vm-%d" % i, "guest_OS": "OTHER_LINUX_64",
            "placement": {"cluster": cl, "datastore": ds},
            "cpu": {"count": 1}, "memory": {"size_MiB": 64},
            "nics": [{"backing": {"type": "STANDARD_PORTGROUP", "network": net}}]})
        api.call("POST", "/api/vcenter/vm/%s/power?action=start" % vm)

    print("URL %s" % url)
    print("USER %s" % ADMIN)
    print("PASSWORD %s" % password)
    cim = None
    if cimd:
        cim = CimVms(api)
        for h in info:
            cim.add(h["id"], h["proc"].cim_vms)
        cim.refresh()
    print("THUMBPRINT %s" % thumb)
    print("HOSTUSER root")
    print("HOSTPASSWORD %s" % host_password)
    for h in info:
        pp = h["proc"].ports
        print("HOST %s %d backend=%s port=%d uuid=%s thumbprint=%s ssh=%d api=%s cim=%s"
              % (h["id"], h["proc"].pid, backend, h["port"], h["uuid"], h["thumbprint"],
                 pp["ssh"], "https://127.0.0.1:%d" % pp["api"],
                 "http://127.0.0.1:%d" % pp["cim"] if pp["cim"] else "-"))
    sys.stdout.flush()
    return cim


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        log(str(e))
        sys.exit(1)
