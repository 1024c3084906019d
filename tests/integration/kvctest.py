"""Helpers for integration tests: real daemons on loopback, stopped by PID.

Nothing here sleeps and hopes: every wait polls a condition until a deadline
and fails with a clear message when the deadline passes.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("KVC_BUILDDIR", SRCDIR)


def binpath(rel):
    """Path of a built program, e.g. binpath('vpxd/vpxd')."""
    return os.path.join(BUILDDIR, rel)


def kvm_usable():
    """(ok, reason): whether /dev/kvm can be opened."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as e:
        return False, "/dev/kvm not usable here: %s" % e.strerror
    os.close(fd)
    return True, ""


def kvm_is_pvm():
    return os.path.isdir("/sys/module/kvm_pvm")


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Poll cond() until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Daemon:
    """A real daemon process in its own process group, logging to a file."""

    def __init__(self, argv, logpath=None, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        if logpath is None:
            fd, logpath = tempfile.mkstemp(prefix=os.path.basename(self.argv[0]) + "-", suffix=".log")
            os.close(fd)
        self.logpath = logpath
        e = dict(os.environ)
        if env:
            e.update(env)
        self._log = open(logpath, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=e, cwd=cwd,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10.0):
        rx = re.compile(pattern)

        def check():
            if self.proc.poll() is not None and not rx.search(self.log()):
                raise RuntimeError("%s exited (%s) before logging %r; log:\n%s"
                                   % (self.argv[0], self.proc.returncode, pattern, self.log()[-3000:]))
            return rx.search(self.log())
        return wait_for(check, timeout, "log line %r from %s" % (pattern, self.argv[0]))

    def wait_port(self, port, host="127.0.0.1", timeout=10.0):
        def check():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited (%s); log:\n%s"
                                   % (self.argv[0], self.proc.returncode, self.log()[-3000:]))
            return port_open(port, host)
        return wait_for(check, timeout, "port %s:%d" % (host, port))

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL, group=True):
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout=10.0):
        """SIGTERM by PID, wait with a deadline, then SIGKILL. Returns exit code."""
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM, group=False)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(5)
        self.kill(signal.SIGKILL)   # anything left in its group
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


def control_line(path, line, timeout=10):
    """Send one LINE to a unix control socket (hostd's control.sock); its
    one-line answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall((line + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.decode().strip()


def processes():
    """(pid, argv as a list of bytes) of every process whose command line
    can be read now."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        yield int(d), argv
