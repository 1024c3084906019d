"""DRS in vpxd with sim hosts: settings and rules over REST, a fully
automated cluster that balances a skewed load within a few passes while
anti-affine VMs stay apart and a must rule holds, and manual mode where
recommendations wait to be applied."""
import pytest

from kvctest import wait_for
from hostd_util import rpc_missing_reason
from drs_util import Env
from test_vpxd_util import check_error

reason = rpc_missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def env():
    # 10 Gb/s vMotion: each 1 GiB VM moves in about a second.
    e = Env("link-speed = 10\n")
    yield e
    assert e.close() == 0


def busy_vms(env, hd, host, names, vcpus=4):
    vms = {}
    for n in names:
        vms[n] = env.create_vm(n, host, mib=1024, cpus=vcpus)
        assert hd.control("host 0 vm %s workload cpu:90" % n) == "OK"
        env.power_on(vms[n])
    return vms


def test_settings_and_rules_validation(env):
    cl = env.cluster("V1")
    st, d, _ = env.req("GET", "/api/kvc/cluster/%s/drs" % cl)
    assert st == 200, d
    assert d["enabled"] is False and d["automation_level"] == "fullyAutomated"
    assert d["migration_threshold"] == 3 and d["pass_interval_s"] == 60
    st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl,
                        {"enabled": True, "migration_threshold": 4, "pass_interval_s": 5,
                         "automation_level": "manual"})
    assert st == 204, js
    st, d, _ = env.req("GET", "/api/kvc/cluster/%s/drs" % cl)
    assert d["enabled"] is True and d["migration_threshold"] == 4
    assert d["automation_level"] == "manual" and d["pass_interval_s"] == 5
    for bad in ({"migration_threshold": 6}, {"automation_level": "auto"}, {"enabled": "yes"},
                {"pass_interval_s": 0}, {"colour": "red"}):
        st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl, bad)
        check_error(st, js, 400, "INVALID_ARGUMENT")
    st, d2, _ = env.req("GET", "/api/kvc/cluster/%s/drs" % cl)
    assert d2["migration_threshold"] == 4 and d2["automation_level"] == "manual"
    st, js, _ = env.req("GET", "/api/kvc/cluster/domain-c999/drs")
    check_error(st, js, 404, "NOT_FOUND")
    for bad in ({"name": "r", "kind": "VM_ANTI_AFFINITY", "vms": ["vm-1"]},
                {"name": "r", "kind": "SOMETIMES", "vms": []},
                {"name": "r", "kind": "VM_HOST_MUST", "vms": ["vm-424242"], "hosts": []},
                {"name": "", "kind": "VM_AFFINITY", "vms": []}):
        st, js, _ = env.req("POST", "/api/kvc/cluster/%s/rules" % cl, bad)
        check_error(st, js, 400, "INVALID_ARGUMENT")
    st, rules, _ = env.req("GET", "/api/kvc/cluster/%s/rules" % cl)
    assert st == 200 and rules == []


def test_fully_automated_balances_and_keeps_rules(env):
    cl = env.cluster("D1")
    hd = env.hostd(3, "drsa")
    hosts = env.add_hosts(hd, cl)
    env.datastore()
    h0 = hosts[0]
    vms = busy_vms(env, hd, h0, ["a1", "a2", "p1", "w1", "w2", "w3"])
    # a1 and a2 must be kept apart; p1 must stay on host 0.
    st, r1, _ = env.req("POST", "/api/kvc/cluster/%s/rules" % cl, {
        "name": "apart", "kind": "VM_ANTI_AFFINITY", "vms": [vms["a1"], vms["a2"]]})
    assert st == 201, r1
    st, r2, _ = env.req("POST", "/api/kvc/cluster/%s/rules" % cl, {
        "name": "pin", "kind": "VM_HOST_MUST", "vms": [vms["p1"]], "hosts": [h0]})
    assert st == 201, r2
    st, js, _ = env.req("POST", "/api/kvc/cluster/%s/rules" % cl, {
        "name": "pin", "kind": "VM_HOST_MUST", "vms": [vms["p1"]], "hosts": [h0]})
    check_error(st, js, 400, "ALREADY_EXISTS")
    # Wait for the demand to show up before turning DRS on.
    wait_for(lambda: env.req("GET", "/api/kvc/cluster/%s/drs" % cl)[1]["imbalance"] > 0.2,
             20, "the skew to show in the stats", 0.2)
    st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl,
                        {"enabled": True, "automation_level": "fullyAutomated",
                         "migration_threshold": 3, "pass_interval_s": 2})
    assert st == 204, js

    def balanced():
        st, d, _ = env.req("GET", "/api/kvc/cluster/%s/drs" % cl)
        return d if d["imbalance"] <= d["target_imbalance"] and all(
            env.vms_on(h) for h in hosts) else None
    d = wait_for(balanced, 60, "DRS to balance the cluster", 0.5)
    assert d["hard_rule_violations"] == 0
    assert env.host_of(vms["p1"], hosts) == h0
    assert env.host_of(vms["a1"], hosts) != env.host_of(vms["a2"], hosts)
    for n in vms:
        assert env.copies(n) == 1
    st, recs, _ = env.req("GET", "/api/kvc/cluster/%s/drs/recommendations" % cl)
    assert recs and all(r["vm"] != vms["p1"] for r in recs)
    assert any(r["state"] == "applied" for r in recs)
    for r in recs:
        assert r["gain"] > 0 or r["reason"] != "balance", r
        assert r["reason"] in ("balance", "rule", "evacuate")
    assert env.events("VmMigratedEvent") and env.events("DrsRecommendationEvent")
    # Balanced now: another pass finds nothing worth moving.
    st, run, _ = env.req("POST", "/api/kvc/cluster/%s/drs?action=run" % cl)
    assert st == 200 and run["recommendations"] == [], run
    # A manual relocate may not break the must rule either.
    st, js, _ = env.req("POST", "/api/vcenter/vm/%s?action=relocate" % vms["p1"],
                        {"placement": {"host": hosts[1]}})
    msg = check_error(st, js, 400, "NOT_ALLOWED_IN_CURRENT_STATE")
    assert "pin" in msg
    st, rules, _ = env.req("GET", "/api/kvc/cluster/%s/rules" % cl)
    assert {(x["rule"], x["kind"]) for x in rules} == {(r1, "VM_ANTI_AFFINITY"),
                                                       (r2, "VM_HOST_MUST")}
    assert [x for x in rules if x["rule"] == r2][0]["hosts"] == [h0]
    st, js, _ = env.req("DELETE", "/api/kvc/cluster/%s/rules/%s" % (cl, r1))
    assert st == 204, js
    st, js, _ = env.req("DELETE", "/api/kvc/cluster/%s/rules/%s" % (cl, r1))
    check_error(st, js, 404, "NOT_FOUND")
    st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl, {"enabled": False})
    assert st == 204


def test_manual_mode_waits_for_apply(env):
    cl = env.cluster("M1")
    hd = env.hostd(2, "drsm")
    hosts = env.add_hosts(hd, cl)
    env.datastore()
    vms = busy_vms(env, hd, hosts[0], ["m1", "m2", "m3", "m4"])
    wait_for(lambda: env.req("GET", "/api/kvc/cluster/%s/drs" % cl)[1]["imbalance"] > 0.2,
             20, "the skew to show in the stats", 0.2)
    st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl,
                        {"enabled": True, "automation_level": "manual"})
    assert st == 204, js
    st, run, _ = env.req("POST", "/api/kvc/cluster/%s/drs?action=run" % cl)
    assert st == 200 and run["recommendations"], run
    st, recs, _ = env.req("GET", "/api/kvc/cluster/%s/drs/recommendations?state=pending" % cl)
    assert [r["id"] for r in recs] and all(r["source"] == hosts[0] for r in recs)
    # Nothing moved by itself.
    assert len(env.vms_on(hosts[0])) == 4
    st, js, _ = env.req("POST", "/api/kvc/cluster/%s/drs/recommendations?action=apply" % cl,
                        {"recommendations": ["drsrec-99999"]})
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, res, _ = env.req("POST", "/api/kvc/cluster/%s/drs/recommendations?action=apply" % cl,
                         {"recommendations": [recs[0]["id"]]})
    assert st == 200 and "task" in res[recs[0]["id"]], res
    t = env.wait_task(res[recs[0]["id"]]["task"], 30)
    assert t["status"] == "SUCCEEDED", t
    assert env.host_of(recs[0]["vm"], hosts) == recs[0]["target"]
    wait_for(lambda: [r for r in env.req("GET", "/api/kvc/cluster/%s/drs/recommendations"
                                         % cl)[1] if r["id"] == recs[0]["id"]][0]["state"]
             == "applied", 10, "recommendation applied")
    st, js, _ = env.req("GET", "/api/kvc/cluster/%s/drs/recommendations?state=maybe" % cl)
    check_error(st, js, 400, "INVALID_ARGUMENT")


def test_power_on_places_the_vm(env):
    cl = env.cluster("P1")
    hd = env.hostd(2, "drsp")
    hosts = env.add_hosts(hd, cl)
    env.datastore()
    busy = busy_vms(env, hd, hosts[0], ["b1", "b2", "b3"])
    wait_for(lambda: env.req("GET", "/api/kvc/cluster/%s/drs" % cl)[1]["imbalance"] > 0.1,
             20, "the skew to show in the stats", 0.2)
    # Threshold 1: only mandatory moves, so nothing is balanced, but a VM
    # that powers on still goes where DRS places it.
    st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl,
                        {"enabled": True, "automation_level": "fullyAutomated",
                         "migration_threshold": 1})
    assert st == 204, js
    vm = env.create_vm("ip1", hosts[0], mib=512)
    env.power_on(vm)
    assert env.vms_on(hosts[1], "ip1") == [vm] and env.copies("ip1") == 1
    st, p, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
    assert p["state"] == "POWERED_ON"
    assert sorted(env.vms_on(hosts[0])) == sorted(busy.values())
    # In manual mode it powers on where it is.
    st, js, _ = env.req("PATCH", "/api/kvc/cluster/%s/drs" % cl, {"automation_level": "manual"})
    assert st == 204
    vm2 = env.create_vm("ip2", hosts[0], mib=512)
    env.power_on(vm2)
    assert env.vms_on(hosts[0], "ip2") == [vm2]
