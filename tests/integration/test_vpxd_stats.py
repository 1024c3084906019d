"""vpxd's statistics: what sim hosts report every stats-interval is stored
with its rollups (5min, 30min, 2h, 1day averages) in vpxd's database, served
by GET /api/kvc/stats?interval=..., and still there after a vpxd restart."""
import tempfile

import pytest

from kvctest import binpath, wait_for
from hostd_util import Hostd, rpc_missing_reason
from test_vpxd_util import Vpxd, make_tree
import os

pytestmark = pytest.mark.skipif(
    not os.path.exists(binpath("vpxd/vpxd")) or rpc_missing_reason() is not None,
    reason=rpc_missing_reason() or "vpxd is not built")

CONF = "[hosts]\nheartbeat = 200ms\nstats-interval = 100ms\n"


def stats(vx, token, entity, interval):
    st, js, _ = vx.request("GET", "/api/kvc/stats?entity=%s&interval=%s" % (entity, interval),
                           token=token)
    assert st == 200, (st, js)
    assert js["entity"] == entity and js["interval"] == interval
    return js["samples"]


def test_rollups_match_samples_and_survive_restart():
    with tempfile.TemporaryDirectory(prefix="kvc-stats-") as tmp:
        os.makedirs(os.path.join(tmp, "vpxd"))
        vx = Vpxd(conf_extra=CONF, tmp=os.path.join(tmp, "vpxd")).start()
        h = None
        try:
            token = vx.login()
            tree = make_tree(vx, token)
            # One host: HA's admission control would refuse the power-on.
            st, js, _ = vx.request("PATCH", "/api/kvc/cluster/%s/ha" % tree["cluster"],
                                   {"enabled": False}, token=token)
            assert st in (200, 204), (st, js)
            h = Hostd(tmp, hosts=1)
            info = h.hosts[0]
            st, host, _ = vx.request("POST", "/api/vcenter/host", {
                "hostname": "127.0.0.1", "port": info["port"], "user_name": "root",
                "password": "", "folder": tree["cluster"],
                "thumbprint_verification": "THUMBPRINT", "thumbprint": info["thumbprint"]},
                token=token)
            assert st == 201, host

            def shared_ds():
                st, rows, _ = vx.request("GET", "/api/vcenter/datastore?names=shared",
                                         token=token)
                return rows[0]["datastore"] if st == 200 and rows else None
            ds = wait_for(shared_ds, 15, "the shared datastore")
            st, vm, _ = vx.request("POST", "/api/vcenter/vm", {
                "name": "s1", "guest_OS": "OTHER_LINUX_64",
                "placement": {"cluster": tree["cluster"], "datastore": ds},
                "cpu": {"count": 1}, "memory": {"size_MiB": 64}}, token=token)
            assert st == 201, vm
            st, js, _ = vx.request("POST", "/api/vcenter/vm/%s/power?action=start" % vm,
                                   token=token)
            assert st == 204, js
            wait_for(lambda: len(stats(vx, token, vm, "realtime")) >= 8, 30,
                     "8 realtime samples of the VM")
            # No more samples once the host is gone: then both views are final.
            h.kill9()
            h = None
            wait_for(lambda: vx.request("GET", "/api/vcenter/host", token=token)[1][0]
                     ["connection_state"] != "CONNECTED", 15, "host not responding")
            for entity in (host, vm):
                rt = stats(vx, token, entity, "realtime")
                assert len(rt) >= 8
                means = {k: sum(s[k] for s in rt) / len(rt)
                         for k in ("cpu_MHz", "mem_MiB", "net_rx_Bps", "disk_write_Bps")}
                assert means["cpu_MHz"] > 0, (entity, "the sim reports CPU use")
                if entity == vm:
                    assert means["net_rx_Bps"] > 0, "counters become rates"
                for interval, secs in (("5min", 300), ("30min", 1800), ("2h", 7200),
                                       ("1day", 86400)):
                    ru = stats(vx, token, entity, interval)
                    assert 1 <= len(ru) <= 2, (interval, ru)  # a run may cross a boundary
                    assert sum(r["samples"] for r in ru) == len(rt), (interval, ru, len(rt))
                    assert all(r["interval_s"] == secs for r in ru)
                    for k, mean in means.items():
                        got = sum(r[k] * r["samples"] for r in ru) / len(rt)
                        assert abs(got - mean) <= 1e-6 * max(1.0, abs(mean)), (
                            entity, interval, k, got, mean)
            before = stats(vx, token, vm, "5min")

            # Bad intervals change nothing and say what is kept.
            st, js, _ = vx.request("GET", "/api/kvc/stats?entity=%s&interval=1h" % host,
                                   token=token)
            assert st == 400 and "5min" in js["messages"][0]["default_message"], js

            # Stored, not remembered: a restart keeps the rollups.
            vx.stop()
            vx.start()
            token = vx.login()
            assert stats(vx, token, vm, "5min") == before
        finally:
            if h:
                h.kill9()
            vx.stop()
