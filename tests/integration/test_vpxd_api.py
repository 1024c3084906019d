"""vpxd's REST API against a real vpxd on 127.0.0.1: sessions, inventory,
errors and bad input, events, metrics, the OpenAPI document."""
import json
import os
import re
import socket
import ssl
import subprocess
import time

import pytest

from kvctest import binpath, wait_for
from test_vpxd_util import (ADMIN, ADMIN_PW, Vpxd, check_error, fill_path, make_tree,
                            param_values)


@pytest.fixture(scope="module")
def vx():
    v = Vpxd().start()
    yield v
    assert v.stop() == 0


@pytest.fixture(scope="module")
def token(vx):
    return vx.login()


def test_session_lifecycle(vx):
    tok = vx.login()
    st, js, _ = vx.request("GET", "/api/session", token=tok)
    assert st == 200
    assert js["user"] == ADMIN
    assert set(js) == {"user", "created_time", "last_accessed_time"}
    st, js, _ = vx.request("DELETE", "/api/session", token=tok)
    assert st == 204 and js is None
    st, js, _ = vx.request("GET", "/api/session", token=tok)
    check_error(st, js, 401, "UNAUTHENTICATED")
    st, js, _ = vx.request("GET", "/api/vcenter/vm")
    check_error(st, js, 401, "UNAUTHENTICATED")
    st, js, _ = vx.request("GET", "/api/vcenter/vm", token="0" * 64)
    check_error(st, js, 401, "UNAUTHENTICATED")


def test_rest_session(vx):
    st, js, resp = vx.request("POST", "/rest/com/vmware/cis/session", basic=(ADMIN, ADMIN_PW),
                              headers={"vmware-use-header-authn": "true"})
    assert st == 200
    tok = js["value"]
    assert re.search(r"vmware-api-session-id=%s" % tok, resp.getheader("Set-Cookie"))
    st, js, _ = vx.request("POST", "/rest/com/vmware/cis/session?~action=get",
                           headers={"Cookie": "vmware-api-session-id=" + tok})
    assert st == 200 and js["value"]["user"] == ADMIN
    st, js, _ = vx.request("DELETE", "/rest/com/vmware/cis/session", token=tok)
    assert st == 200
    st, js, _ = vx.request("POST", "/rest/com/vmware/cis/session?~action=get", token=tok)
    assert st == 401
    assert js["type"] == "com.vmware.vapi.std.errors.unauthenticated"
    assert js["value"]["error_type"] == "UNAUTHENTICATED"


def test_failed_logins_are_throttled():
    v = Vpxd().start()
    try:
        for _ in range(3):
            st, js, _ = v.request("POST", "/api/session", basic=(ADMIN, "wrong"))
            check_error(st, js, 401, "UNAUTHENTICATED")
        # Now even the right password waits out the delay.
        st, js, resp = v.request("POST", "/api/session", basic=(ADMIN, ADMIN_PW))
        msg = check_error(st, js, 401, "UNAUTHENTICATED")
        assert "too many failed logins" in msg
        assert int(resp.getheader("Retry-After")) >= 1

        def ok():
            st, js, _ = v.request("POST", "/api/session", basic=(ADMIN, ADMIN_PW))
            return st == 201
        wait_for(ok, timeout=10, what="the login delay to pass", interval=0.25)
        st, js, _ = v.request("POST", "/api/session")
        check_error(st, js, 401, "UNAUTHENTICATED")
    finally:
        v.stop()


def test_inventory_crud(vx, token):
    tree = make_tree(vx, token)
    dc = tree["datacenter"]
    assert re.fullmatch(r"datacenter-\d+", dc)
    assert re.fullmatch(r"domain-c\d+", tree["cluster"])
    assert re.fullmatch(r"group-v\d+", tree["vm_folder"])
    st, js, _ = vx.request("GET", "/api/vcenter/datacenter?names=DC1", token=token)
    assert st == 200 and [d["datacenter"] for d in js] == [dc]
    st, js, _ = vx.request("GET", "/api/vcenter/datacenter?names=nope", token=token)
    assert st == 200 and js == []
    st, js, _ = vx.request("POST", "/api/vcenter/datacenter", {"name": "DC1"}, token=token)
    check_error(st, js, 400, "ALREADY_EXISTS")
    st, js, _ = vx.request("GET", "/api/vcenter/cluster?datacenters=" + dc, token=token)
    assert st == 200
    assert js == [{"cluster": tree["cluster"], "name": "C1", "ha_enabled": True,
                   "drs_enabled": False}]
    st, js, _ = vx.request("GET", "/api/vcenter/folder?type=VIRTUAL_MACHINE&datacenters=" + dc,
                           token=token)
    assert st == 200 and [f["folder"] for f in js] == [tree["vm_folder"]]
    # Folder create and delete.
    st, sub, _ = vx.request("POST", "/api/kvc/folder",
                            {"name": "web", "parent_folder": tree["vm_folder"]}, token=token)
    assert st == 201, sub
    st, js, _ = vx.request("GET", "/api/vcenter/folder?parent_folders=" + tree["vm_folder"],
                           token=token)
    assert [f["name"] for f in js] == ["web"]
    st, inner, _ = vx.request("POST", "/api/kvc/folder",
                              {"name": "inner", "parent_folder": sub}, token=token)
    assert st == 201 and inner.startswith("group-v")
    st, js, _ = vx.request("DELETE", "/api/kvc/folder/" + sub, token=token)
    check_error(st, js, 400, "RESOURCE_IN_USE")
    st, js, _ = vx.request("DELETE", "/api/kvc/folder/" + tree["vm_folder"], token=token)
    check_error(st, js, 400, "NOT_ALLOWED_IN_CURRENT_STATE")
    for f in (inner, sub):
        st, js, _ = vx.request("DELETE", "/api/kvc/folder/" + f, token=token)
        assert st == 204
    # Resource pools.
    st, rp, _ = vx.request("POST", "/api/vcenter/resource-pool",
                           {"name": "gold", "parent": tree["root_pool"],
                            "cpu_allocation": {"reservation": 0, "limit": 4000,
                                               "expandable_reservation": False,
                                               "shares": {"level": "HIGH"}}}, token=token)
    assert st == 201, rp
    st, js, _ = vx.request("GET", "/api/vcenter/resource-pool/" + rp, token=token)
    assert st == 200
    assert js["name"] == "gold"
    # HIGH is vSphere's 8000; a hostless cluster has no capacity to reserve.
    assert js["cpu_allocation"] == {"reservation": 0, "expandable_reservation": False,
                                    "limit": 4000, "shares": {"level": "HIGH", "shares": 8000}}
    st, js, _ = vx.request("PATCH", "/api/vcenter/resource-pool/" + rp,
                           {"name": "platinum", "memory_allocation": {"limit": 2048}},
                           token=token)
    assert st == 204, js
    st, js, _ = vx.request("GET", "/api/vcenter/resource-pool/" + tree["root_pool"], token=token)
    assert js["resource_pools"] == [rp]
    st, js, _ = vx.request("GET", "/api/vcenter/resource-pool?names=platinum", token=token)
    assert [p["resource_pool"] for p in js] == [rp]
    st, js, _ = vx.request("DELETE", "/api/vcenter/resource-pool/" + tree["root_pool"],
                           token=token)
    check_error(st, js, 400, "UNSUPPORTED")
    st, js, _ = vx.request("DELETE", "/api/vcenter/resource-pool/" + rp, token=token)
    assert st == 204
    # Empty lists for what only hosts report.
    for path in ("/api/vcenter/host", "/api/vcenter/vm", "/api/vcenter/datastore",
                 "/api/vcenter/network"):
        st, js, _ = vx.request("GET", path + "?datacenters=" + dc, token=token)
        assert st == 200 and js == [], (path, js)
    # Delete the cluster, then the datacenter.
    st, js, _ = vx.request("DELETE", "/api/kvc/cluster/" + tree["cluster"], token=token)
    assert st == 204
    st, js, _ = vx.request("DELETE", "/api/vcenter/datacenter/" + dc, token=token)
    assert st == 204
    st, js, _ = vx.request("GET", "/api/vcenter/datacenter/" + dc, token=token)
    check_error(st, js, 404, "NOT_FOUND")


def test_vm_and_host_operations_need_hosts(vx, token):
    tree = make_tree_named(vx, token, "DC-hosts")
    # Unknown objects are 404 with the spec's body.
    for path in ("/api/vcenter/vm/vm-424242", "/api/vcenter/vm/vm-424242/power",
                 "/api/vcenter/vm/vm-424242/guest/identity", "/api/vcenter/vm/vm-424242/tools",
                 "/api/vcenter/vm/vm-424242/hardware", "/api/vcenter/vm/vm-424242/guest/power",
                 "/api/vcenter/datastore/datastore-424242", "/api/cis/tasks/task-424242"):
        st, js, _ = vx.request("GET", path, token=token)
        check_error(st, js, 404, "NOT_FOUND")
    st, js, _ = vx.request("POST", "/api/vcenter/vm/vm-424242/power?action=start", token=token)
    check_error(st, js, 404, "NOT_FOUND")
    # A VM needs a host; one that does not exist is 404.
    spec = {"guest_OS": "OTHER_LINUX_64", "name": "vm1",
            "placement": {"folder": tree["vm_folder"], "host": "host-424242"}}
    st, js, _ = vx.request("POST", "/api/vcenter/vm", spec, token=token)
    check_error(st, js, 404, "NOT_FOUND")
    # A cluster without connected hosts cannot place a VM.
    spec["placement"] = {"folder": tree["vm_folder"], "cluster": tree["cluster"]}
    st, js, _ = vx.request("POST", "/api/vcenter/vm", spec, token=token)
    check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    # Adding a host that does not answer fails clearly and leaves nothing.
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    st, js, _ = vx.request("POST", "/api/vcenter/host",
                           {"hostname": "127.0.0.1", "port": closed, "user_name": "root",
                            "password": "x", "folder": tree["cluster"],
                            "thumbprint_verification": "NONE"}, token=token)
    check_error(st, js, 503, "SERVICE_UNAVAILABLE")
    st, js, _ = vx.request("GET", "/api/vcenter/host", token=token)
    assert js == []


def make_tree_named(vx, token, name):
    st, dc, _ = vx.request("POST", "/api/vcenter/datacenter", {"name": name}, token=token)
    assert st == 201, dc
    st, info, _ = vx.request("GET", "/api/vcenter/datacenter/" + dc, token=token)
    st, cl, _ = vx.request("POST", "/api/kvc/cluster", {"name": "C", "folder": dc}, token=token)
    assert st == 201, cl
    st, clinfo, _ = vx.request("GET", "/api/vcenter/cluster/" + cl, token=token)
    return {"datacenter": dc, "cluster": cl, "vm_folder": info["vm_folder"],
            "host_folder": info["host_folder"], "root_pool": clinfo["resource_pool"]}


def test_routing_errors(vx, token):
    st, js, _ = vx.request("GET", "/api/vcenter/nothing-here", token=token)
    check_error(st, js, 404, "NOT_FOUND")
    st, js, resp = vx.request("PUT", "/api/vcenter/vm", token=token)
    check_error(st, js, 405, "OPERATION_NOT_FOUND")
    assert "GET" in resp.getheader("Allow")
    st, js, _ = vx.request("POST", "/api/vcenter/vm/vm-1/power?action=explode", token=token)
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, js, _ = vx.request("POST", "/api/vcenter/vm/vm-1/power", token=token)
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, js, _ = vx.request("GET", "/api/vcenter/vm?power_states=ON", token=token)
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, js, _ = vx.request("GET", "/api/vcenter/host?standalone=maybe", token=token)
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, js, _ = vx.request("POST", "/api/vcenter/datacenter?vmw-task=true", {"name": "T"},
                           token=token)
    check_error(st, js, 400, "INVALID_ARGUMENT")


BAD_BODIES = [
    (b'{"name": "x",', "malformed JSON"),
    (b'{"name": "a", "name": "b"}', "malformed JSON"),      # duplicate key
    (b'[1, 2, 3]', "must be a JSON object"),
    (b'"just a string"', "must be a JSON object"),
    (b'{"name": 42}', "field 'name' must be a string"),
    (b'{"name": null}', "field 'name' is required"),
    (b'{"name": "ok", "colour": "red"}', "unknown field 'colour'"),
    (b'{"name": "a\\u0000b"}', "malformed JSON"),
    (b'{"name": ""}', "must not be empty"),
    (b'\xff\xfe{}', "malformed JSON"),
]


def test_bad_bodies_change_nothing(vx, token):
    st, before, _ = vx.request("GET", "/api/vcenter/datacenter", token=token)
    for raw, want in BAD_BODIES:
        st, js, _ = vx.request("POST", "/api/vcenter/datacenter", raw=raw, token=token,
                               headers={"Content-Type": "application/json"})
        msg = check_error(st, js, 400, "INVALID_ARGUMENT")
        assert want in msg, (raw, msg)
    st, after, _ = vx.request("GET", "/api/vcenter/datacenter", token=token)
    assert before == after


def test_bad_sizes(vx, token):
    tree = make_tree_named(vx, token, "DC-sizes")
    cases = [
        ({"reservation": -5}, "between"),
        ({"limit": -2}, "between"),
        ({"reservation": 10 ** 30}, "too big integer"),       # beyond int64
        ({"reservation": 1 << 60}, "between"),
        ({"reservation": "100"}, "must be an integer"),
        ({"reservation": 1.5}, "must be an integer"),
        ({"reservation": 100, "limit": 50}, "below the reservation"),
        ({"shares": {"level": "HUGE"}}, "must be one of"),
        ({"shares": {"level": "CUSTOM"}}, "is required"),
    ]
    for alloc, want in cases:
        st, js, _ = vx.request("POST", "/api/vcenter/resource-pool",
                               {"name": "p", "parent": tree["root_pool"],
                                "cpu_allocation": alloc}, token=token)
        msg = check_error(st, js, 400, "INVALID_ARGUMENT")
        assert want in msg, (alloc, msg)
    vm_cases = [
        ({"cpu": {"count": 0}}, "between"),
        ({"cpu": {"count": 100000}}, "between"),
        ({"memory": {"size_MiB": -1}}, "between"),
        ({"memory": {"size_MiB": 1 << 40}}, "between"),
        ({"cpu": {"count": 3, "cores_per_socket": 2}}, "multiple"),
        ({"disks": [{"new_vmdk": {"capacity": -1}}]}, "between"),
        ({"guest_OS": "not an os"}, "bad guest_OS"),
        ({"name": "a/b"}, "without '/'"),
        ({"placement": {"folder": tree["vm_folder"], "hots": "host-1"}}, "unknown field"),
    ]
    for extra, want in vm_cases:
        spec = {"guest_OS": "OTHER_LINUX_64", "name": "vm",
                "placement": {"folder": tree["vm_folder"], "cluster": tree["cluster"]}}
        spec.update(extra)
        st, js, _ = vx.request("POST", "/api/vcenter/vm", spec, token=token)
        msg = check_error(st, js, 400, "INVALID_ARGUMENT")
        assert want in msg, (extra, msg)
    st, js, _ = vx.request("GET", "/api/vcenter/resource-pool/" + tree["root_pool"], token=token)
    assert js["resource_pools"] == []


def test_oversized_bodies(vx, token):
    # The declared length is refused before any of the body is read.
    conn = vx.connect()
    conn.putrequest("POST", "/api/vcenter/datacenter")
    conn.putheader("vmware-api-session-id", token)
    conn.putheader("Content-Length", str(2 << 20))
    conn.endheaders()
    resp = conn.getresponse()
    msg = check_error(resp.status, json.loads(resp.read()), 413, "INVALID_ARGUMENT")
    assert "exceeds the limit" in msg
    conn.close()
    # Chunked, with no Content-Length to check up front.
    conn = vx.connect()
    conn.putrequest("POST", "/api/vcenter/datacenter")
    conn.putheader("vmware-api-session-id", token)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b"x" * 65536
    try:
        for _ in range(40):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        js = json.loads(resp.read())
        check_error(resp.status, js, 413, "INVALID_ARGUMENT")
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass        # the server may also close the connection on us
    finally:
        conn.close()
    st, js, _ = vx.request("GET", "/api/session", token=token)
    assert st == 200


def test_slow_client_is_dropped(vx, token):
    # A client that sends half a request line and stalls is closed after the
    # connection timeout (2 s here); vpxd keeps serving others meanwhile.
    conn = vx.connect(timeout=30)
    sock = conn.sock
    sock.sendall(b"GET /api/sess")
    st, js, _ = vx.request("GET", "/api/session", token=token)
    assert st == 200
    sock.settimeout(30)
    t0 = time.monotonic()
    try:
        data = sock.recv(100)
    except (ConnectionResetError, ssl.SSLError):
        data = b""
    assert data == b"" or data.startswith(b"HTTP/1.1 4")
    assert time.monotonic() - t0 < 30
    conn.close()


def test_events_and_stream(vx, token):
    conn = vx.connect(timeout=20)
    conn.request("GET", "/api/kvc/events/stream", headers={"vmware-api-session-id": token})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    st, dc, _ = vx.request("POST", "/api/vcenter/datacenter", {"name": "DC-stream"}, token=token)
    assert st == 201
    buf = b""
    deadline = time.monotonic() + 15
    while b"DatacenterCreatedEvent" not in buf and time.monotonic() < deadline:
        buf += resp.fp.read1(4096) if hasattr(resp.fp, "read1") else resp.read(1)
    conn.close()
    text = buf.decode()
    assert "event: DatacenterCreatedEvent" in text
    data = [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]
    ev = json.loads(data[-1])
    assert ev["object"] == dc and ev["type"] == "DatacenterCreatedEvent"
    st, js, _ = vx.request("GET", "/api/kvc/events?type=DatacenterCreatedEvent&object=" + dc,
                           token=token)
    assert st == 200 and len(js) == 1 and js[0]["seq"] == ev["seq"]
    st, js, _ = vx.request("GET", "/api/kvc/events?limit=0", token=token)
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, js, _ = vx.request("GET", "/api/kvc/alarms", token=token)
    assert st == 200
    names = {a["name"] for a in js["definitions"]}
    assert {"Host not responding", "Virtual machine power state changed",
            "Datastore usage on disk"} <= names


def test_metrics(vx, token):
    st, text, resp = vx.request("GET", "/metrics")
    assert st == 200
    assert resp.getheader("Content-Type").startswith("text/plain")
    samples = {}
    for ln in text.splitlines():
        if ln.startswith("#") or not ln:
            continue
        m = re.fullmatch(r'([a-z_]+)(\{[a-z_]+="[^"]*"\})? (-?\d+(\.\d+)?)', ln)
        assert m, "not Prometheus text: %r" % ln
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    assert samples["kvc_vpxd_up"] == 1
    assert samples['kvc_vpxd_http_requests_total{code="2xx"}'] > 0
    assert samples['kvc_vpxd_inventory_objects{type="folder"}'] >= 1


EXPECTED_ROUTES = {
    ("post", "/api/session"), ("get", "/api/session"), ("delete", "/api/session"),
    ("post", "/rest/com/vmware/cis/session"), ("delete", "/rest/com/vmware/cis/session"),
    ("get", "/api/vcenter/vm"), ("post", "/api/vcenter/vm"), ("get", "/api/vcenter/vm/{vm}"),
    ("delete", "/api/vcenter/vm/{vm}"), ("get", "/api/vcenter/vm/{vm}/power"),
    ("post", "/api/vcenter/vm/{vm}/power?action=start"),
    ("post", "/api/vcenter/vm/{vm}/power?action=stop"),
    ("post", "/api/vcenter/vm/{vm}/power?action=suspend"),
    ("post", "/api/vcenter/vm/{vm}/power?action=reset"),
    ("get", "/api/vcenter/vm/{vm}/guest/power"), ("get", "/api/vcenter/vm/{vm}/guest/identity"),
    ("get", "/api/vcenter/vm/{vm}/tools"), ("get", "/api/vcenter/vm/{vm}/hardware"),
    ("get", "/api/vcenter/host"), ("post", "/api/vcenter/host"),
    ("delete", "/api/vcenter/host/{host}"), ("post", "/api/vcenter/host/{host}?action=connect"),
    ("post", "/api/vcenter/host/{host}?action=disconnect"),
    ("get", "/api/vcenter/cluster"), ("get", "/api/vcenter/cluster/{cluster}"),
    ("get", "/api/vcenter/datacenter"), ("post", "/api/vcenter/datacenter"),
    ("get", "/api/vcenter/datacenter/{datacenter}"),
    ("delete", "/api/vcenter/datacenter/{datacenter}"),
    ("get", "/api/vcenter/datastore"), ("get", "/api/vcenter/datastore/{datastore}"),
    ("get", "/api/vcenter/network"), ("get", "/api/vcenter/folder"),
    ("get", "/api/vcenter/resource-pool"), ("post", "/api/vcenter/resource-pool"),
    ("get", "/api/vcenter/resource-pool/{resource_pool}"),
    ("patch", "/api/vcenter/resource-pool/{resource_pool}"),
    ("delete", "/api/vcenter/resource-pool/{resource_pool}"),
    ("get", "/api/cis/tasks/{task}"), ("get", "/api/kvc/events"),
    ("get", "/api/kvc/events/stream"), ("get", "/api/kvc/alarms"), ("get", "/api/kvc/users"),
    ("get", "/api/kvc/roles"), ("get", "/api/kvc/permissions"),
    ("get", "/api/openapi.json"), ("get", "/metrics"),
}


def test_openapi_covers_every_route(vx, token):
    st, doc, _ = vx.request("GET", "/api/openapi.json")
    assert st == 200 and doc["openapi"].startswith("3.")
    ops = {(m, p) for p, item in doc["paths"].items() for m in item}
    missing = EXPECTED_ROUTES - ops
    assert not missing, missing
    tree = make_tree_named(vx, token, "DC-openapi")
    values = param_values(tree)
    # Every documented operation is served: it never answers "no such
    # resource" or "method not allowed".
    for m, p in sorted(ops):
        if m == "delete" and p in ("/api/session", "/rest/com/vmware/cis/session"):
            continue
        if p == "/api/kvc/events/stream":
            continue        # a stream: covered by test_events_and_stream
        st, js, _ = vx.request(m.upper(), fill_path(p, values), token=token,
                               raw=b"{}" if m in ("post", "patch") else None)
        assert st != 405, (m, p, js)
        if st == 404:
            assert not js["messages"][0]["default_message"].startswith("no resource"), (m, p)
    # And nothing undocumented is: the server's routes are the document's.
    for m, p in (("GET", "/api/vcenter/vm/vm-1/snapshots"), ("GET", "/api/vcenter/clusters"),
                 ("POST", "/api/kvc/nothing"), ("GET", "/api/vcenter/vm/vm-1/power/x"),
                 ("GET", "/api")):
        st, js, _ = vx.request(m, p, token=token)
        check_error(st, js, 404, "NOT_FOUND")
    for m, p in (("PUT", "/api/vcenter/vm"), ("PATCH", "/api/vcenter/datacenter")):
        st, js, _ = vx.request(m, p, token=token, raw=b"{}")
        check_error(st, js, 405, "OPERATION_NOT_FOUND")


def test_audit_log_records_changes(vx, token):
    st, dc, _ = vx.request("POST", "/api/vcenter/datacenter", {"name": "DC-audit"}, token=token)
    st, js, _ = vx.request("POST", "/api/vcenter/datacenter", {"name": "DC-audit"}, token=token)
    st, log, _ = vx.request("GET", "/api/kvc/audit", token=token)
    assert st == 200
    mine = [a for a in log if a["action"] == "POST /api/vcenter/datacenter"
            and a["object"] == dc]
    assert mine and mine[-1]["result"] == "ok" and mine[-1]["user"] == ADMIN
    assert any(a["result"] == "ALREADY_EXISTS" for a in log)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", a["time"]) for a in log)


def test_check_mode(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text("[server]\nport = 9443\n")
    p = subprocess.run([binpath("vpxd/vpxd"), "-n", "-f", str(good)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "configuration OK" in p.stderr and "port = 9443" in p.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nport = 70000\nbogus = 1\n")
    p = subprocess.run([binpath("vpxd/vpxd"), "-n", "-f", str(bad)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert "bad.conf:2" in p.stderr and "bad.conf:3" in p.stderr


def test_first_start_prints_generated_password():
    v = Vpxd(admin_password=None).start()
    try:
        m = v.daemon.wait_log(r"ADMIN (\S+) (\S+)")
        user, pw = m.group(1), m.group(2)
        assert user == ADMIN and len(pw) >= 16
        v.login(user, pw)
        v.stop()
        v.start()
        v.login(user, pw)
        assert "ADMIN " not in v.log()      # printed once, on the first start only
        import sqlite3
        db = sqlite3.connect(v.db_path)
        (h,), = db.execute("SELECT hash FROM users WHERE name = ?", (ADMIN,)).fetchall()
        db.close()
        assert h.startswith("$argon2id$") and pw not in h
    finally:
        v.stop()
