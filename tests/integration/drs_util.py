"""Helpers for the migration and DRS integration tests (no tests here): a
real vpxd, real hostd processes with sim hosts, a datacenter and a cluster
set up through the REST API, and small waits on tasks and inventory."""
import os
import tempfile

from kvctest import wait_for
from hostd_util import Hostd
from test_vpxd_util import Vpxd


class Env:
    def __init__(self, conf_extra=""):
        self.tmpdir = tempfile.TemporaryDirectory(prefix="kvc-drs-")
        self.tmp = self.tmpdir.name
        self.shared = os.path.join(self.tmp, "shared")
        conf = ("[hosts]\nheartbeat = 200ms\nstats-interval = 500ms\n"
                "[migration]\npoll = 100ms\n" + conf_extra)
        os.makedirs(os.path.join(self.tmp, "vpxd"))
        self.vx = Vpxd(conf_extra=conf, tmp=os.path.join(self.tmp, "vpxd")).start()
        self.token = self.vx.login()
        self.hostds = []
        st, self.dc, _ = self.req("POST", "/api/vcenter/datacenter", {"name": "DC"})
        assert st == 201, self.dc
        st, info, _ = self.req("GET", "/api/vcenter/datacenter/" + self.dc)
        self.vm_folder = info["vm_folder"]
        self.host_folder = info["host_folder"]

    def req(self, method, path, body=None):
        return self.vx.request(method, path, body, token=self.token)

    def cluster(self, name="C1", drs=False):
        st, cl, _ = self.req("POST", "/api/kvc/cluster",
                             {"name": name, "folder": self.dc, "drs_enabled": drs})
        assert st == 201, cl
        return cl

    def hostd(self, n, name, datastores=None, extra=()):
        ds = datastores if datastores is not None else ["shared=%s:shared" % self.shared]
        h = Hostd(self.tmp, hosts=n, datastores=ds, name=name, extra=list(extra))
        self.hostds.append(h)
        return h

    def add_hosts(self, hd, folder):
        ids = []
        for h in hd.hosts:
            st, hid, _ = self.req("POST", "/api/vcenter/host", {
                "hostname": "127.0.0.1", "port": h["port"], "user_name": "root",
                "password": "x", "folder": folder, "thumbprint_verification": "THUMBPRINT",
                "thumbprint": h["thumbprint"]})
            assert st == 201, hid
            ids.append(hid)
        return ids

    def datastore(self, name="shared"):
        def find():
            st, l, _ = self.req("GET", "/api/vcenter/datastore?names=" + name)
            return st == 200 and l and l[0]["datastore"]
        return wait_for(find, 20, "datastore %s reported" % name)

    def create_vm(self, name, host, mib=256, cpus=1):
        st, vm, _ = self.req("POST", "/api/vcenter/vm", {
            "guest_OS": "OTHER_LINUX_64", "name": name,
            "placement": {"folder": self.vm_folder, "host": host},
            "cpu": {"count": cpus}, "memory": {"size_MiB": mib}})
        assert st == 201, vm
        return vm

    def power_on(self, vm):
        st, js, _ = self.req("POST", "/api/vcenter/vm/%s/power?action=start" % vm)
        assert st == 204, js

    def vms_on(self, host, name=None):
        q = "/api/vcenter/vm?hosts=" + host + ("&names=" + name if name else "")
        st, l, _ = self.req("GET", q)
        assert st == 200, l
        return [v["vm"] for v in l]

    def copies(self, name):
        st, l, _ = self.req("GET", "/api/vcenter/vm?names=" + name)
        assert st == 200, l
        return len(l)

    def host_of(self, vm, hosts):
        for h in hosts:
            if vm in self.vms_on(h):
                return h
        return None

    def task(self, tid):
        st, t, _ = self.req("GET", "/api/cis/tasks/" + tid)
        assert st == 200, t
        return t

    def wait_task(self, tid, timeout=60):
        return wait_for(lambda: (lambda t: t if t["status"] in ("SUCCEEDED", "FAILED")
                                 else None)(self.task(tid)), timeout, "task %s" % tid, 0.1)

    def events(self, type_, obj=None):
        q = "/api/kvc/events?type=" + type_ + ("&object=" + obj if obj else "")
        st, l, _ = self.req("GET", q)
        assert st == 200, l
        return l

    def close(self):
        for h in self.hostds:
            try:
                h.stop()
            except Exception:
                pass
        rc = self.vx.stop()
        self.tmpdir.cleanup()
        return rc
