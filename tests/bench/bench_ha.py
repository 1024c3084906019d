#!/usr/bin/python3
"""BENCH ha-failover: kill -9 of a host to the restarted VM's first guest
heartbeat on a survivor.

A real vpxd and two sim hosts (one hostd process group each) on 127.0.0.1,
HA on with a 1000 ms failure detection time and 200 ms host heartbeats.  Each
run powers a VM on on one host, waits for its tools heartbeat, kills that
host's process group (SIGKILL), and measures until vpxd's inventory shows the
VM on the other host with its tools heartbeat running again (the sim guest
boots 300 ms).  Then the killed host is started again and the next run kills
the other one.  The peer is the target, 3000 ms (vSphere HA takes tens of
seconds with its default timings; 3 s is this project's goal).
kvm: BENCH-SKIP until hostd reads the kvm guest's tools heartbeat.
"""
import os
import statistics
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

NAME = "ha-failover"
RUNS = max(10, int(os.environ.get("KVC_BENCH_RUNS", "10")))
TARGET_MS = 3000


def main():
    import test_ha
    from hostd_util import rpc_missing_reason
    from kvctest import binpath, wait_for

    why = rpc_missing_reason()
    if why or not os.path.exists(binpath("vpxd/vpxd")):
        print("BENCH-SKIP %s %s" % (NAME, why or "vpxd not built"))
        return 0
    test_ha.DETECT_MS = 1000
    times = []
    with tempfile.TemporaryDirectory(prefix="kvc-bench-ha-") as tmp:
        c = test_ha.Cluster(tmp, 2, ha={"admission_control": {"policy": "disabled"}})
        try:
            for run in range(RUNS):
                victim = c.ids[run % 2]
                vm = c.create_vm("b-%d" % run, victim)
                wait_for(lambda: c.db("SELECT host, tools_run_state FROM vm WHERE id = ?", vm)
                         == [(victim, "RUNNING")], 20, "tools running")
                t0 = time.monotonic()
                c.kill(victim)

                def up():
                    r = c.db("SELECT host, tools_run_state FROM vm WHERE id = ?", vm)
                    return r and r[0][0] != victim and r[0][1] == "RUNNING"
                wait_for(up, 60, "the VM's heartbeat on the survivor", interval=0.005)
                times.append((time.monotonic() - t0) * 1000)
                c.revive(victim)
                wait_for(lambda: c.db("SELECT state FROM ha_host WHERE host = ?", victim)
                         == [("healthy",)], 30, "host back")
                st, js, _ = c.api("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
                assert st == 204, js
        finally:
            c.stop()
    med = statistics.median(times)
    print("BENCH %s ours=%.0f target=%d unit=ms ratio=%.2f median=%.0f spread=%.0f runs=%d"
          " detection_ms=1000 heartbeat_ms=200 backend=sim"
          % (NAME, med, TARGET_MS, med / TARGET_MS, med, max(times) - min(times), len(times)))
    print("BENCH-SKIP %s-kvm hostd does not read the kvm guest's tools heartbeat yet"
          " (docs/hosts.md), so there is no first heartbeat to time" % NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
