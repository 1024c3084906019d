"""vmkd's side of live migration: a destination VM powered on with
--incoming answers once its vmx listens (with the address), the source's
vmx exits "migrated" (status 3) and vmkd reports that reason, not a crash,
and the guest runs on under the destination vmkd with its counter going on."""
import os
import re
import subprocess

import pytest

from kvctest import binpath, wait_for
from test_vmkd import Vmkd, kv, real_config, real_vmx_or_skip, tmp  # noqa: F401 (fixture)

VMXCTL = binpath("vmkernel-kvm/vmxctl")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="vmkd tests need root (cgroups)")


def vmxctl(sock, *args, check=True):
    p = subprocess.run([VMXCTL, "-s", sock] + list(args), capture_output=True, text=True,
                       timeout=60)
    if check:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return dict(re.findall(r"^([\w.]+)=(.*)$", p.stdout, re.M)), p


def test_incoming_destination_and_migrated_exit(tmp):
    vmx, guest = real_vmx_or_skip()
    for d in ("a", "b"):
        os.makedirs(os.path.join(tmp, d), mode=0o755)
    a = Vmkd(os.path.join(tmp, "a"), vmx=vmx).start()
    b = Vmkd(os.path.join(tmp, "b"), vmx=vmx).start()
    try:
        wa = a.watch()
        conf = real_config(tmp, guest, "mig", workload="counter")
        on = kv(a.ctl("power-on", "mig", conf, "--log", os.path.join(tmp, "a.log")).stdout)
        assert on["state"] == "VM_RUNNING"
        src_sock = on["socket"]
        wait_for(lambda: int(vmxctl(src_sock, "stats")[0].get("tools.counter", "0")) > 3, 20,
                 "the counter runs on the source")

        # Bad incoming addresses change nothing.
        for bad in ("http://x", "tcp:1.2.3.4:5 extra", "x" * 200):
            p = b.ctl("power-on", "mig", conf, "--incoming", bad, check=False)
            assert p.returncode != 0 and "incoming" in (p.stdout + p.stderr)
        # A disk over the stream is only for a migration destination.
        p = b.ctl("power-on", "mig", conf, "--incoming-disk", check=False)
        assert p.returncode != 0 and "incoming_disk needs incoming" in (p.stdout + p.stderr)
        assert "mig" not in b.ctl("list").stdout

        dst = kv(b.ctl("power-on", "mig", conf, "--incoming", "tcp:127.0.0.1:0",
                       "--log", os.path.join(tmp, "b.log")).stdout)
        assert dst["state"] == "VM_RUNNING"
        listen = dst["listen"]
        assert re.match(r"tcp:127\.0\.0\.1:[1-9]\d*$", listen), listen

        before = int(vmxctl(src_sock, "stats")[0]["tools.counter"])
        st, p = vmxctl(src_sock, "migrate", listen, "wait")
        assert "COMPLETED" in p.stdout or st.get("phase", "").endswith("COMPLETED"), p.stdout
        wa.wait_log(r"event exited id=mig pid=%s reason=migrated" % on["pid"], timeout=20)
        assert "mig" not in a.ctl("list").stdout
        # The guest goes on under b, its counter past where it was.
        wait_for(lambda: int(vmxctl(dst["socket"], "stats")[0].get("tools.counter", "0"))
                 > before + 3, 20, "the counter continues on the destination")
        off = kv(b.ctl("power-off", "mig").stdout)
        assert off["reason"] == "powered-off"
        wa.stop()
    finally:
        b.stop()
        a.stop()
