"""Helpers for vpxd's integration tests (imported by test_vpxd_*.py and
test_rest_*.py; it holds no tests itself): start a real vpxd on 127.0.0.1
and talk HTTPS to it with Python's ssl + http.client, trusting the server's
certificate only by its pinned SHA-256 thumbprint, as vSphere clients do.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import tempfile

from kvctest import Daemon, binpath, free_port

ADMIN = "administrator@vsphere.local"
ADMIN_PW = "Admin-pass-123"


def thumbprint_of_der(der):
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


class Vpxd:
    """A vpxd in its own temporary state directory."""

    def __init__(self, conf_extra="", admin_password=ADMIN_PW, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="vpxd-test-")
        self.state = os.path.join(self.tmp, "state")
        self.conf = os.path.join(self.tmp, "vpxd.conf")
        self.port = free_port()
        with open(self.conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1\nconnection-timeout = 2s\n")
            f.write("[auth]\nlogin-fail-limit = 3\n")
            if admin_password:
                f.write('admin-password = "%s"\n' % admin_password)
            f.write(conf_extra)
        self.daemon = None
        self.thumbprint = None

    @property
    def db_path(self):
        return os.path.join(self.state, "vpxd.db")

    def start(self):
        self.daemon = Daemon([binpath("vpxd/vpxd"), "-f", self.conf, "--dir", self.state,
                              "--port", self.port])
        m = self.daemon.wait_log(r"listening on https://\S+ thumbprint ([0-9A-F:]{95})",
                                 timeout=30)
        self.thumbprint = m.group(1)
        return self

    def stop(self):
        if self.daemon:
            rc = self.daemon.stop()
            self.daemon = None
            return rc
        return None

    def kill9(self):
        self.daemon.kill()
        self.daemon.proc.wait(10)
        self.daemon.stop()
        self.daemon = None

    def connect(self, timeout=10):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE     # trust comes from the pinned thumbprint below
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=timeout)
        conn.connect()
        got = thumbprint_of_der(conn.sock.getpeercert(binary_form=True))
        assert got == self.thumbprint, "server certificate %s is not the pinned %s" % (
            got, self.thumbprint)
        return conn

    def request(self, method, path, body=None, token=None, headers=None, raw=None,
                basic=None):
        h = dict(headers or {})
        if token:
            h["vmware-api-session-id"] = token
        if basic:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % basic).encode()).decode()
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = self.connect()
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            try:
                js = json.loads(text) if text else None
            except ValueError:
                js = text
            return resp.status, js, resp
        finally:
            conn.close()

    def login(self, user=ADMIN, password=ADMIN_PW):
        st, js, _ = self.request("POST", "/api/session", basic=(user, password))
        assert st == 201, (st, js)
        assert isinstance(js, str) and len(js) == 64
        return js

    def log(self):
        return self.daemon.log() if self.daemon else ""


def check_error(st, js, status, error_type):
    """An /api error: the status and the spec's body shape."""
    assert st == status, (st, js)
    assert isinstance(js, dict), js
    assert js.get("error_type") == error_type, js
    msgs = js.get("messages")
    assert isinstance(msgs, list) and msgs, js
    for m in msgs:
        assert set(m) >= {"args", "default_message", "id"}, m
        assert isinstance(m["args"], list) and isinstance(m["default_message"], str)
        assert m["default_message"], m
    return msgs[0]["default_message"]


def make_tree(v, token):
    """A datacenter with a cluster: returns dict of ids."""
    st, dc, _ = v.request("POST", "/api/vcenter/datacenter", {"name": "DC1"}, token=token)
    assert st == 201, dc
    st, info, _ = v.request("GET", "/api/vcenter/datacenter/" + dc, token=token)
    assert st == 200, info
    st, cl, _ = v.request("POST", "/api/kvc/cluster",
                          {"name": "C1", "folder": dc, "ha_enabled": True}, token=token)
    assert st == 201, cl
    st, clinfo, _ = v.request("GET", "/api/vcenter/cluster/" + cl, token=token)
    assert st == 200, clinfo
    return {"datacenter": dc, "cluster": cl, "vm_folder": info["vm_folder"],
            "host_folder": info["host_folder"], "root_pool": clinfo["resource_pool"]}


def param_values(tree):
    return {"vm": "vm-999999", "host": "host-999999", "datacenter": tree["datacenter"],
            "cluster": tree["cluster"], "folder": tree["vm_folder"],
            "datastore": "datastore-999999", "resource_pool": tree["root_pool"],
            "task": "task-999999", "alarm": "alarm-1", "user": "someone",
            "role": "-2", "entity": tree["datacenter"], "principal": "someone",
            "rule": "drsrule-999999", "vswitch": "vSwitch99", "portgroup": "nope",
            "world": "1000001", "snapshot": "1"}


def fill_path(path, values):
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
