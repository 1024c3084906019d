"""The VM serial console through vpxd (GET/POST /api/kvc/vm/{vm}/console):
what the guest prints and what is typed at it, through its host, for the
sim backend and (where /dev/kvm and root allow) a real guest under vmx."""
import os
import tempfile

import pytest

from kvctest import BUILDDIR, wait_for
from test_kvcenter_up_kvm import Cluster, skip_reason as kvm_skip_reason

UP = os.path.join(BUILDDIR, "kvcenter-up")


def backends():
    out = [pytest.param("sim", id="sim")]
    why = kvm_skip_reason()
    out.append(pytest.param("kvm", id="kvm", marks=pytest.mark.skipif(
        why is not None, reason=why or "")))
    return out


pytestmark = pytest.mark.skipif(not os.path.exists(UP), reason="kvcenter-up not built")


@pytest.fixture(params=backends())
def cluster(request):
    with tempfile.TemporaryDirectory(prefix="kvc-console-") as tmp:
        c = Cluster(tmp, 1, 1, backend=request.param)
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()


def read_until(c, vm, text, offset=0, timeout=30):
    """Console output from OFFSET until it holds TEXT; returns (all, next)."""
    seen = [""]
    pos = [offset]

    def got():
        st, js = c.api("GET", "/api/kvc/vm/%s/console?offset=%d" % (vm, pos[0]))
        assert st == 200, (st, js)
        assert js["offset"] >= pos[0] and js["total"] >= js["offset"]
        seen[0] += js["data"]
        pos[0] = js["offset"]
        return text in seen[0]
    wait_for(got, timeout, "%r on the console" % text)
    return seen[0], pos[0]


def test_console_output_and_input(cluster):
    c = cluster
    st, vms = c.api("GET", "/api/vcenter/vm")
    vm = vms[0]["vm"]
    out, pos = read_until(c, vm, "KVC-GUEST: ready")
    st, js = c.api("POST", "/api/kvc/vm/%s/console" % vm, {"data": "hello kvc\n"})
    assert st == 200 and js["accepted"] == len("hello kvc\n"), (st, js)
    out, pos2 = read_until(c, vm, "KVC-GUEST: console: hello kvc", offset=pos)
    assert pos2 > pos
    # At the end: nothing more, same offset.
    st, js = c.api("GET", "/api/kvc/vm/%s/console?offset=%d" % (vm, 1 << 40))
    assert st == 200 and js["data"] == "" and js["offset"] == js["total"]
    # max bounds the answer.
    st, js = c.api("GET", "/api/kvc/vm/%s/console?offset=0&max=4" % vm)
    assert st == 200 and len(js["data"].encode()) <= 4 and js["offset"] <= 4 + js["total"]


def test_console_bad_requests_change_nothing(cluster):
    c = cluster
    st, vms = c.api("GET", "/api/vcenter/vm")
    vm = vms[0]["vm"]
    read_until(c, vm, "KVC-GUEST: ready")
    for q in ("offset=abc", "offset=-1", "max=0", "max=99999999"):
        st, js = c.api("GET", "/api/kvc/vm/%s/console?%s" % (vm, q))
        assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", (q, st, js)
    for body in ({"data": 5}, {"text": "x"}, {"data": "x" * 5000}, []):
        st, js = c.api("POST", "/api/kvc/vm/%s/console" % vm, body)
        assert st == 400 and js["error_type"] == "INVALID_ARGUMENT", (body, st, js)
    st, js = c.api("GET", "/api/kvc/vm/vm-999999/console")
    assert st == 404 and js["error_type"] == "NOT_FOUND"
    # Nothing typed by the bad requests reached the guest.
    st, js = c.api("GET", "/api/kvc/vm/%s/console?offset=0" % vm)
    assert "KVC-GUEST: console:" not in js["data"]
    # Powered off: no console.
    st, js = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
    assert st == 204, js
    st, js = c.api("GET", "/api/kvc/vm/%s/console" % vm)
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)
    st, js = c.api("POST", "/api/kvc/vm/%s/console" % vm, {"data": "x\n"})
    assert st == 400 and js["error_type"] == "NOT_ALLOWED_IN_CURRENT_STATE", (st, js)


def test_kvcli_vm_console(cluster):
    """kvcli vm console read|send: the same console, esxcli-style output."""
    import json
    import subprocess
    c = cluster
    kvcli = os.path.join(BUILDDIR, "cli", "kvcli")
    if not os.path.exists(kvcli):
        pytest.skip("kvcli is not built")
    st, vms = c.api("GET", "/api/vcenter/vm")
    vm = vms[0]["vm"]
    read_until(c, vm, "KVC-GUEST: ready")
    base = [kvcli, "--server", c.url(), "--user", c.get("USER")[0],
            "--password", c.get("PASSWORD")[0], "--thumbprint", c.get("THUMBPRINT")[0]]

    def run(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, timeout=60)
    r = run("--formatter=json", "vm", "console", "read", "--vm", vm)
    assert r.returncode == 0, r.stderr
    js = json.loads(r.stdout)
    assert "KVC-GUEST: ready" in js["Output"] and js["NextOffset"] <= js["Total"]
    r = run("vm", "console", "send", "--vm", vm, "--data", "from kvcli")
    assert r.returncode == 0 and "Accepted: 11" in r.stdout, (r.stdout, r.stderr)
    wait_for(lambda: "KVC-GUEST: console: from kvcli" in json.loads(
        run("--formatter=json", "vm", "console", "read", "--vm", vm,
            "--offset", str(js["NextOffset"])).stdout)["Output"], 30, "the echo via kvcli")
    r = run("vm", "console", "read", "--vm", "not an id")
    assert r.returncode != 0 and "Error: While processing '--vm'." in r.stderr + r.stdout
    r = run("vm", "console", "read", "--vm", vm, "--offset", "-5")
    assert r.returncode != 0 and "--offset" in r.stderr + r.stdout
