"""Helpers for hostd's integration tests: start hostd (sim), drive vpxd's
host manager through tests/integration/test_hostd_driver, talk to hostd's
control socket.  Every wait polls with a deadline."""
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time

from kvctest import Daemon, binpath, control_line, wait_for

HB_MS = 200


_reason = []


def rpc_missing_reason():
    """Why hostd cannot run here, or None.  hostd needs the RPC transport
    (lib/rpc.c) to be implemented, not the API stub; a one-second start of
    hostd in a scratch directory tells."""
    if _reason:
        return _reason[0]
    r = None
    if not os.path.exists(binpath("hostd/hostd")):
        r = "hostd not built"
    else:
        with tempfile.TemporaryDirectory(prefix="kvc-hostd-probe-") as d:
            p = subprocess.run([binpath("hostd/hostd"), "--backend", "sim", "--state-dir",
                                os.path.join(d, "st"), "--port", "0", "--check-start"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            out = p.stdout.decode("utf-8", "replace")
            if p.returncode != 0:
                if "not implemented" in out:
                    r = "the RPC transport (lib/rpc.c) is not implemented in this build"
                else:
                    r = None    # a real failure: let the tests show it
    _reason.append(r)
    return r


class Hostd:
    """One hostd process (sim backend) with N hosts."""

    def __init__(self, tmp, hosts=1, datastores=None, extra=(), name="esx", state=None,
                 backend="sim", prefix=()):
        """PREFIX: a command hostd runs under (["ip", "netns", "exec", NS])."""
        self.state = state or os.path.join(tmp, "hostd-%s" % name)
        self.tmp = tmp
        self.hosts_n = hosts
        ds = datastores if datastores is not None else ["shared=%s:shared" % os.path.join(tmp, "shared")]
        argv = [binpath("hostd/hostd"), "--backend", backend, "--sim-hosts", str(hosts),
                "--state-dir", self.state, "--port", "0", "--name", name,
                "--heartbeat", str(HB_MS)]
        for d in ds:
            argv += ["--datastore", d]
        argv += list(extra)
        self.argv = argv
        fd, logpath = tempfile.mkstemp(prefix="hostd-%s-" % name, suffix=".log", dir=tmp)
        os.close(fd)
        self.d = Daemon(list(prefix) + argv, logpath=logpath)
        self.hosts = self._wait_ready()

    def _wait_ready(self):
        self.d.wait_log(r"hostd ready: ", timeout=20)
        rx = re.compile(r"host ready index=(\d+) name=(\S+) uuid=(\S+) port=(\d+) thumbprint=(\S+)")
        found = {}
        for m in rx.finditer(self.d.log()):
            found[int(m.group(1))] = dict(index=int(m.group(1)), name=m.group(2),
                                          uuid=m.group(3), port=int(m.group(4)),
                                          thumbprint=m.group(5))
        assert len(found) >= self.hosts_n, self.d.log()[-2000:]
        return [found[i] for i in range(self.hosts_n)]

    @property
    def pid(self):
        return self.d.pid

    def control(self, line):
        return control_line(os.path.join(self.state, "control.sock"), line, timeout=5)

    def stop(self):
        return self.d.stop()

    def kill9(self):
        import signal
        self.d.kill(signal.SIGKILL)
        self.d.proc.wait(5)
        self.d._log.close()


class Driver:
    """vpxd's host manager on a real database (test_hostd_driver)."""

    def __init__(self, tmp, hb_ms=HB_MS):
        self.events = []
        self.lock = threading.Lock()
        self.replies = {}
        self.tag = 0
        self.logpath = os.path.join(tmp, "driver.log")
        self._log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            [binpath("tests/integration/test_hostd_driver"), os.path.join(tmp, "vpxd.db"),
             os.path.join(tmp, "vpxd-state"), str(hb_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            start_new_session=True)
        self.ready = queue.Queue()
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()
        line = self.ready.get(timeout=20)
        self.thumbprint = line.split()[1]

    def _reader(self):
        for raw in self.proc.stdout:
            line = raw.decode().rstrip("\n")
            if line.startswith("READY "):
                self.ready.put(line)
            elif line.startswith("EVENT "):
                with self.lock:
                    self.events.append(line[6:])
            else:
                tag, _, rest = line.partition(" ")
                with self.lock:
                    self.replies[tag] = rest

    def call(self, cmd, timeout=20):
        self.tag += 1
        tag = "t%d" % self.tag
        self.proc.stdin.write(("%s %s\n" % (tag, cmd)).encode())
        self.proc.stdin.flush()

        def got():
            with self.lock:
                return self.replies.get(tag)
        return wait_for(got, timeout, "reply to %r" % cmd)

    def ok(self, cmd, timeout=20):
        r = self.call(cmd, timeout)
        assert r.startswith("OK"), "%s -> %s" % (cmd, r)
        return r

    def mark(self):
        """Position in the event list, for wait_event(..., since=mark)."""
        with self.lock:
            return len(self.events)

    def event_seen(self, pattern, since=0):
        rx = re.compile(pattern)
        with self.lock:
            return any(rx.search(e) for e in self.events[since:])

    def wait_event(self, pattern, timeout=15, since=0):
        return wait_for(lambda: self.event_seen(pattern, since), timeout, "event %r" % pattern)

    def add(self, h, user=None, password=None):
        cmd = "add 127.0.0.1 %d %s" % (h["port"], h["thumbprint"])
        if user:
            cmd += " %s %s" % (user, password)
        r = self.call(cmd)
        # "host-N OK" or "host-N ERR errno message"
        parts = r.split(None, 2)
        assert len(parts) >= 2 and parts[1] == "OK", "%s -> %s" % (cmd, r)
        return parts[0]

    def add_raw(self, port, thumbprint, user=None, password=None):
        cmd = "add 127.0.0.1 %d %s" % (port, thumbprint)
        if user:
            cmd += " %s %s" % (user, password)
        return self.call(cmd)

    def state(self, host_id):
        return self.ok("status %s" % host_id).split()[1]

    def wait_state(self, host_id, state, timeout=15):
        return wait_for(lambda: self.state(host_id) == state, timeout,
                        "host %s %s" % (host_id, state))

    def dbvms(self, host_id):
        r = self.ok("dbvms %s" % host_id)
        out = {}
        for item in r.split()[2:]:
            uuid, power, tools = item.split(":")
            out[uuid] = (power, tools)
        return out

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")
