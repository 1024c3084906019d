#!/usr/bin/python3
"""vmotion-downtime, vmotion-total: live migration of a kvm-backed VM between
the two hosts of a kvcenter-up cluster through vpxd's relocate (orchestration,
vmkd's incoming vmx, the TLS stream between the hosts, the lease hand-over),
beside the same guest migrated vmx to vmx directly in the same run (peer
"vmx": the floor the orchestration adds to).

- downtime: from the source vmx stopping its vCPUs to the destination vmx
  running them (the VMX-MIGRATE lines, CLOCK_MONOTONIC, both in the VM's log);
- total: the synchronous relocate call (POST ...?action=relocate) from
  request to answer, against the direct migration's start-to-running time.
- vmotion-with-disk-total: the same VM relocated with placement.datastore
  set to the destination's local datastore each time (the hosts share none
  of them: the disk goes over the stream with the memory), request to
  answer, against a direct vmx-to-vmx migration with the disk
  (bench_vmx_migrate_disk.py's, a 64 MiB disk of holes, like the VM's
  never-written disk).
64 MiB idle test guest; 7 migrations each, alternating hosts."""
import base64
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_vmx_migrate as raw  # noqa: E402  (its direct vmx-to-vmx run and helpers)
import bench_vmx_migrate_disk as raw_disk  # noqa: E402

BUILD = os.environ.get("KVC_BUILDDIR", os.getcwd())
UP = os.path.join(BUILD, "kvcenter-up")
RUNS = 7


def skip(reason):
    for n in ("vmotion-downtime", "vmotion-total", "vmotion-with-disk-total"):
        print("BENCH-SKIP %s %s" % (n, reason))
    sys.exit(0)


class Cluster:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "c")
        self.p = subprocess.Popen([UP, "--dir", self.dir, "--hosts", "2", "--vms", "1",
                                   "--backend", "kvm", "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        self.lines = []
        for line in self.p.stdout:
            self.lines.append(line.strip())
            if line.startswith("READY"):
                break
        if "READY" not in self.lines:
            raise RuntimeError("kvcenter-up did not come up")
        get = lambda k: [l.split(" ", 1)[1] for l in self.lines if l.startswith(k + " ")]
        self.url = get("URL")[0]
        self.hosts = [h.split()[0] for h in get("HOST")]
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(self.url + "/api/session", method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (get("USER")[0], get("PASSWORD")[0])).encode()).decode())
        self.token = json.loads(urllib.request.urlopen(req, context=self.ctx).read())

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.url + path, data=data, method=method)
        r.add_header("vmware-api-session-id", self.token)
        if data:
            r.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(r, context=self.ctx, timeout=120) as resp:
                raw_ = resp.read()
                return json.loads(raw_) if raw_ else None
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s: %s %s" % (method, path, e.code, e.read()[:500]))

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(60)


def main():
    if os.geteuid() != 0:
        skip("needs root (vmkd's cgroups)")
    if not os.path.exists(UP):
        skip("kvcenter-up is not built")
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip("/dev/kvm not usable: %s" % e.strerror)
    down, total, xtotal = [], [], []
    with tempfile.TemporaryDirectory(prefix="kvc-bench-vmotion-") as tmp:
        c = Cluster(tmp)
        try:
            vm = c.api("GET", "/api/vcenter/vm")[0]
            log = os.path.join(c.dir, "datastores", "shared", vm["name"], "vmware.log")
            raw.wait(lambda: c.api("GET", "/api/vcenter/vm/%s/tools" % vm["vm"])["run_state"]
                     == "RUNNING", 30, "tools RUNNING")
            where = [h for h in c.hosts if c.api("GET", "/api/vcenter/vm?hosts=" + h)]
            cur = where[0]
            for i in range(RUNS + 1):          # the first is a warm-up
                dst = [h for h in c.hosts if h != cur][0]
                before = len(raw.read(log))
                t0 = time.monotonic()
                c.api("POST", "/api/vcenter/vm/%s?action=relocate" % vm["vm"],
                      {"placement": {"host": dst}})
                t1 = time.monotonic()
                new = raw.wait(lambda: (lambda t: t if re.search(r"VMX-MIGRATE running mono_ns=", t)
                                        else None)(raw.read(log)[before:]), 20, "the run line")
                stop = int(re.search(r"vcpus-stopped mono_ns=(\d+)", new).group(1))
                run = int(re.search(r"VMX-MIGRATE running mono_ns=(\d+)", new).group(1))
                if i:
                    down.append((run - stop) / 1e6)
                    total.append((t1 - t0) * 1000)
                cur = dst
            # With the disk: each move to the destination's own local
            # datastore (host i mounts local-esx-i; no other host does).
            local = {}
            for i, h in enumerate(c.hosts):
                rows = c.api("GET", "/api/vcenter/datastore?names=local-esx-%d" % i)
                local[h] = rows[0]["datastore"]
            for i in range(RUNS + 1):
                dst = [h for h in c.hosts if h != cur][0]
                t0 = time.monotonic()
                c.api("POST", "/api/vcenter/vm/%s?action=relocate" % vm["vm"],
                      {"placement": {"host": dst, "datastore": local[dst]}})
                t1 = time.monotonic()
                got = c.api("GET", "/api/vcenter/vm?hosts=" + dst)
                if not got or got[0]["vm"] != vm["vm"]:
                    raise RuntimeError("the VM is not on %s after its relocate" % dst)
                if i:
                    xtotal.append((t1 - t0) * 1000)
                cur = dst
        finally:
            c.stop()
        peer_down, peer_total = [], []
        for i in range(RUNS):
            d, t, _ = raw.ours_once(os.path.join(tmp, "raw%d" % i), 64, "idle", 0, 16, 0.2)
            peer_down.append(d)
            peer_total.append(t)
        peer_x = []
        for i in range(RUNS):
            d = os.path.join(tmp, "rawd%d" % i)
            os.makedirs(d)
            peer_x.append(raw_disk.ours_once(d, None)[0])
    raw.report("vmotion-downtime", down, "vmx", peer_down, "ms")
    raw.report("vmotion-total", total, "vmx", peer_total, "ms")
    raw.report("vmotion-with-disk-total", xtotal, "vmx", peer_x, "ms")


if __name__ == "__main__":
    main()
