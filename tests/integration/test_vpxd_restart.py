"""vpxd's durability: kill -9 loses no committed change, the database
passes PRAGMA integrity_check, and a task left running is marked failed at
the next start."""
import sqlite3

from test_vpxd_util import ADMIN, ADMIN_PW, Vpxd, check_error, make_tree


def integrity(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()


def test_kill9_keeps_every_committed_change():
    v = Vpxd().start()
    try:
        tok = v.login()
        tree = make_tree(v, tok)
        made = []
        for i in range(20):
            st, rp, _ = v.request("POST", "/api/vcenter/resource-pool",
                                  {"name": "rp%d" % i, "parent": tree["root_pool"]}, token=tok)
            assert st == 201
            made.append(rp)
        st, js, _ = v.request("POST", "/api/kvc/users", {"name": "keep", "password": "Keep-pass-1"},
                              token=tok)
        assert st == 201
        st, before, _ = v.request("GET", "/api/vcenter/resource-pool", token=tok)
        v.kill9()
        assert integrity(v.db_path) == [("ok",)]
        v.start()
        assert integrity(v.db_path) == [("ok",)]
        # The session survived too: it was committed.
        st, after, _ = v.request("GET", "/api/vcenter/resource-pool", token=tok)
        assert st == 200 and after == before
        assert set(made) <= {p["resource_pool"] for p in after}
        st, js, _ = v.request("GET", "/api/vcenter/cluster/" + tree["cluster"], token=tok)
        assert st == 200 and js["name"] == "C1"
        v.login("keep", "Keep-pass-1")
        # Ids keep counting: nothing is reused after the restart.
        st, rp, _ = v.request("POST", "/api/vcenter/resource-pool",
                              {"name": "later", "parent": tree["root_pool"]}, token=tok)
        assert st == 201 and rp not in made
    finally:
        v.stop()


def test_kill9_under_write_load():
    # Writes in flight when the process dies: every acknowledged one is
    # there afterwards, and the file is intact.
    import threading
    v = Vpxd().start()
    try:
        tok = v.login()
        tree = make_tree(v, tok)
        acked = []
        stop = threading.Event()

        def writer(n):
            i = 0
            while not stop.is_set() and i < 200:
                try:
                    st, rp, _ = v.request("POST", "/api/vcenter/resource-pool",
                                          {"name": "w%d-%d" % (n, i), "parent": tree["root_pool"]},
                                          token=tok)
                except OSError:
                    return
                if st == 201:
                    acked.append(rp)
                i += 1
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        from kvctest import wait_for
        wait_for(lambda: len(acked) >= 15, timeout=60, what="some acknowledged writes")
        v.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        assert integrity(v.db_path) == [("ok",)]
        v.start()
        st, pools, _ = v.request("GET", "/api/vcenter/resource-pool", token=tok)
        assert set(acked) <= {p["resource_pool"] for p in pools}
    finally:
        v.stop()


def test_interrupted_task_is_failed_after_restart():
    v = Vpxd().start()
    try:
        tok = v.login()
        v.stop()
        # A task the previous run had in flight (vpxd died while a host was
        # working on it), as the database holds it.
        db = sqlite3.connect(v.db_path)
        with db:
            db.execute("INSERT INTO task (id, service, operation, target_type, target_id,"
                       " user_name, status, completed, message, start_time, created)"
                       " VALUES ('task-900', 'com.vmware.vcenter.vm.power', 'start', 'vm',"
                       " 'vm-77', ?, 'RUNNING', 40, 'powering on',"
                       " '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')", (ADMIN,))
        db.close()
        v.start()
        st, js, _ = v.request("GET", "/api/cis/tasks/task-900", token=tok)
        assert st == 200, js
        assert js["status"] == "FAILED"
        # As the spec has it: error is the description, result the error body.
        assert "interrupted" in js["error"]
        assert js["result"]["error_type"] == "ERROR"
        assert "interrupted" in js["result"]["messages"][0]["default_message"]
        assert js["progress"]["completed"] == 40 and js["end_time"]
        assert js["target"] == {"type": "vm", "id": "vm-77"}
        st, js, _ = v.request("GET", "/api/cis/tasks/task-901", token=tok)
        check_error(st, js, 404, "NOT_FOUND")
        st, js, _ = v.request("POST", "/api/cis/tasks?action=list", token=tok)
        assert st == 200 and js["task-900"]["status"] == "FAILED"
        assert "interrupted task(s)" in v.log()
        db = sqlite3.connect(v.db_path)
        hist = db.execute("SELECT status FROM task_history WHERE task = 'task-900'").fetchall()
        db.close()
        assert hist[-1] == ("FAILED",)
    finally:
        v.stop()


def test_stop_answers_requests_still_waiting_for_a_host():
    """SIGTERM while a request waits for a host that does not answer (its
    hostd stopped with SIGSTOP): the client gets 503 and vpxd exits 0
    (MHD must not stop with a suspended connection)."""
    import os
    import re
    import signal
    import threading
    from drs_util import Env
    from kvctest import wait_for
    env = Env()
    hd = None
    try:
        hd = env.hostd(1, "esxw")
        h, = env.add_hosts(hd, env.host_folder)
        env.datastore()
        vm = env.create_vm("w1", h)
        os.kill(hd.pid, signal.SIGSTOP)
        got = {}

        def power_on():
            got["answer"] = env.vx.request("POST", "/api/vcenter/vm/%s/power?action=start" % vm,
                                           token=env.token)
        t = threading.Thread(target=power_on)
        t.start()

        def waiting():
            st, text, _ = env.vx.request("GET", "/metrics", token=env.token)
            m = re.search(r"^kvc_vpxd_http_requests_waiting (\d+)$", text, re.M)
            return m and int(m.group(1)) >= 1
        wait_for(waiting, 20, "the power-on to wait for the stopped host")
        assert env.vx.stop() == 0, "vpxd did not exit cleanly"
        t.join(20)
        assert not t.is_alive()
        st, js, _ = got["answer"]
        check_error(st, js, 503, "SERVICE_UNAVAILABLE")
    finally:
        if hd:
            os.kill(hd.pid, signal.SIGCONT)
        env.close()
