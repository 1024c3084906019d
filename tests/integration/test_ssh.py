"""hostd's shell: Debian's OpenSSH client against hostd's SSH server, and
kvcli against hostd's HTTPS endpoint, both running the one command table.

A hostd (sim backend) is added to vpxd's real host manager
(test_hostd_driver) and given a running VM, so `vm process list` has
something to show.  Most logins use a key made here with ssh-keygen; the
password login goes through SSH_ASKPASS (no sshpass in Debian's base), and
the interactive shell through a pseudo-terminal.
"""
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from hostd_util import Driver, Hostd, rpc_missing_reason
from kvctest import binpath, free_port, wait_for

SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")
reason = rpc_missing_reason()
if reason is None and not (SSH and SSH_KEYGEN):
    reason = "OpenSSH client not installed (Debian package openssh-client)"
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

PASSWORD = "Pa55-word!"
COMMON = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
          "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20", "-F", "/dev/null"]


class Env:
    pass


@pytest.fixture(scope="module")
def env():
    with tempfile.TemporaryDirectory(prefix="kvc-ssh-") as tmp:
        e = Env()
        e.tmp = tmp
        e.key = os.path.join(tmp, "id_ed25519")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", e.key],
                       check=True, timeout=30)
        e.other_key = os.path.join(tmp, "id_other")
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", e.other_key],
                       check=True, timeout=30)
        e.authorized = os.path.join(tmp, "authorized_keys")
        with open(e.key + ".pub") as f, open(e.authorized, "w") as out:
            out.write("# the test's key\n" + f.read())
        os.chmod(e.authorized, 0o600)
        # Free ports picked by hostd itself (no race with other tests).
        e.hostd = Hostd(tmp, extra=["--ssh-port", "any", "--api-port", "any",
                                    "--admin-password", PASSWORD,
                                    "--authorized-keys", e.authorized])
        e.drv = Driver(tmp)
        try:
            m = e.hostd.d.wait_log(r"ssh ready index=0 name=esx port=(\d+) ")
            e.ssh_port = int(m.group(1))
            m = e.hostd.d.wait_log(r"api ready index=0 name=esx port=(\d+) thumbprint=(\S+)")
            e.api_port = int(m.group(1))
            e.thumbprint = m.group(2)
            hid = e.drv.add(e.hostd.hosts[0], "root", PASSWORD)
            e.vm_uuid = str(uuid.uuid4())
            e.drv.ok("create %s %s web01 shared" % (hid, e.vm_uuid))
            e.drv.ok("power %s %s on" % (hid, e.vm_uuid))
            e.drv.ok("create %s %s idle01 shared" % (hid, str(uuid.uuid4())))   # stays off
            yield e
        finally:
            e.drv.stop()
            assert e.hostd.d.alive(), e.hostd.d.log()[-3000:]
            log = e.hostd.d.log
            # A clean stop: threads joined, nothing leaked (ASan builds check).
            assert e.hostd.stop() == 0, log()[-3000:]
            assert "Sanitizer" not in log(), log()[-3000:]


def ssh(e, *cmd, key=None, extra=(), timeout=60, env=None):
    argv = [SSH] + COMMON + ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                             "-i", key or e.key, "-p", str(e.ssh_port)] + list(extra) + \
        ["root@127.0.0.1"] + list(cmd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env)


def kvcli(e, *args, password=PASSWORD):
    return subprocess.run([binpath("cli/kvcli"), "--server", "https://127.0.0.1:%d" % e.api_port,
                           "--user", "root", "--password", password, "--thumbprint",
                           e.thumbprint] + list(args),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "HOME": e.tmp})


@pytest.mark.parametrize("words", [
    ["system", "version", "get"],
    ["system", "hostname", "get"],
    ["vm", "process", "list"],
    ["--formatter=json", "vm", "process", "list"],
    ["--formatter=xml", "vm", "process", "list"],
    ["--formatter=csv", "system", "version", "get"],
    ["system", "version", "get", "--bogus"],
    ["vm", "process", "kill"],
    ["system"],
], ids=lambda w: "_".join(x.strip("-").replace("=", "-") for x in w))
def test_exec_matches_kvcli(env, words):
    k = kvcli(env, *words)
    s = ssh(env, "esxcli", *words)
    assert s.stdout == k.stdout
    # Usage lines name the program: kvcli there, esxcli on the host.
    assert s.stderr == k.stderr.replace("Usage: kvcli", "Usage: esxcli")
    assert s.returncode == k.returncode
    assert k.returncode in (0, 1)


def test_exec_output_and_status(env):
    r = ssh(env, "vm", "process", "list")      # "esxcli" may be left out
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.split("\n\n")
    assert blocks[0].splitlines()[0] == "web01"
    assert "   UUID: %s" % env.vm_uuid in r.stdout
    assert "   Display Name: web01" in r.stdout
    assert "   Config File: %s" % os.path.join(env.tmp, "shared", "web01", "web01.vmx") in r.stdout
    assert "idle01" not in r.stdout            # powered off: no process
    assert r.stderr == ""
    r = ssh(env, "esxcli system version get")  # one string, split by the host
    assert r.returncode == 0
    assert "   Product: kvcenter host\n" in r.stdout
    r = ssh(env, "bogus", "command")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("Error: Unknown command or namespace bogus\n")
    r = ssh(env, "system version get 'unterminated")
    assert r.returncode == 1
    assert r.stderr == "Error: unterminated single quote\n"


def test_wrong_key_refused(env):
    r = ssh(env, "system", "version", "get", key=env.other_key)
    assert r.returncode == 255
    assert "Permission denied" in r.stderr
    assert r.stdout == ""


def askpass_env(e, password):
    script = os.path.join(e.tmp, "askpass-%d.sh" % abs(hash(password)))
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s\\n' '%s'\n" % password.replace("'", "'\\''"))
    os.chmod(script, 0o700)
    return dict(os.environ, SSH_ASKPASS=script, SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")


def ssh_password(e, password, *cmd):
    """Password login: no tty and a session of its own (setsid), so ssh asks
    SSH_ASKPASS for the password."""
    argv = [SSH] + COMMON + ["-o", "PreferredAuthentications=password",
                             "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                             "-p", str(e.ssh_port), "root@127.0.0.1"] + list(cmd)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=askpass_env(e, password),
                          start_new_session=True)


def test_password_login(env):
    r = ssh_password(env, PASSWORD, "esxcli", "system", "hostname", "get")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "   Host Name: esx\n"
    m = env.hostd.d.wait_log(r"login root from 127\.0\.0\.1:\d+ \(password\)")
    assert m


def test_bad_password_refused_and_logged(env):
    r = ssh_password(env, "wrong-password", "esxcli", "system", "version", "get")
    assert r.returncode == 255
    assert "Permission denied" in r.stderr
    assert r.stdout == ""
    env.hostd.d.wait_log(r"failed password for 'root' from 127\.0\.0\.1")
    # kvcli's login over HTTPS is checked against the same user.
    k = kvcli(env, "system", "version", "get", password="wrong-password")
    assert k.returncode == 1
    assert k.stderr == "Error: Cannot complete login due to an incorrect user name or password.\n"
    # The right password still works afterwards.
    assert ssh_password(env, PASSWORD, "system", "version", "get").returncode == 0


class Tty:
    """ssh -tt on a pseudo-terminal, read with a deadline."""

    def __init__(self, e):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(SSH, [SSH] + COMMON + ["-tt", "-o", "BatchMode=yes", "-o",
                                            "IdentitiesOnly=yes", "-i", e.key,
                                            "-p", str(e.ssh_port), "root@127.0.0.1"])
        self.buf = b""

    def read_until(self, needle, timeout=30):
        needle = needle.encode() if isinstance(needle, str) else needle
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no %r on the terminal; got %r" % (needle, self.buf[-2000:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise EOFError("terminal closed; got %r" % self.buf[-2000:])
                self.buf += data
        i = self.buf.index(needle) + len(needle)
        seen, self.buf = self.buf[:i], self.buf[i:]
        return seen.decode("utf-8", "replace")

    def send(self, s):
        os.write(self.fd, s.encode())

    def wait_exit(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                raise TimeoutError("ssh did not exit")
            # Drain the terminal so ssh is never blocked writing to it.
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    os.read(self.fd, 4096)
                except OSError:
                    pass

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


PROMPT = "[root@esx:~] "


def test_interactive_shell(env):
    t = Tty(env)
    try:
        first = t.read_until(PROMPT)
        assert "The time and date of this login have been sent to the system logs." in first
        assert "kvcenter host esx (hostd " in first
        t.send("system version get\r")
        out = t.read_until(PROMPT)
        assert "system version get\r\n" in out                  # echoed
        assert "   Product: kvcenter host\r\n   Version: " in out
        # Editing: backspace erases, ^C drops the line, escape sequences are ignored.
        t.send("vm prX\x7focess list\x1b[A\r")
        out = t.read_until(PROMPT)
        assert "web01\r\n   World ID: " in out
        t.send("half a line\x03")
        out = t.read_until(PROMPT)
        assert "^C" in out and "Error" not in out
        t.send("nosuch thing\r")
        out = t.read_until(PROMPT)
        assert "Error: Unknown command or namespace nosuch\r\n" in out
        t.send("esxcli --formatter=keyvalue system hostname get\r")
        out = t.read_until(PROMPT)
        assert "HostnameGet.HostName.string=esx\r\n" in out
        t.send("exit\r")
        assert t.wait_exit() == 0
    except BaseException:
        t.kill()
        raise


def test_ctrl_d_leaves_with_the_last_status(env):
    t = Tty(env)
    try:
        t.read_until(PROMPT)
        t.send("bogus\r")
        t.read_until(PROMPT)
        t.send("\x04")
        assert t.wait_exit() == 1
    except BaseException:
        t.kill()
        raise


def test_shell_without_pty_reads_lines(env):
    argv = [SSH] + COMMON + ["-T", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i",
                             env.key, "-p", str(env.ssh_port), "root@127.0.0.1"]
    r = subprocess.run(argv, input="system hostname get\nnope\nsystem hostname get",
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "   Host Name: esx\n   Host Name: esx\n"
    assert r.stderr.startswith("Error: Unknown command or namespace nope\n")
    assert r.returncode == 0                    # the last command's status


def test_bad_clients_never_hurt_hostd(env):
    # Garbage instead of a protocol version, then a client that stops in the
    # middle of the key exchange.
    s = socket.create_connection(("127.0.0.1", env.ssh_port), timeout=10)
    s.sendall(b"\x00\xff garbage \r\n" * 100)
    s.settimeout(10)
    try:
        while s.recv(4096):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    s = socket.create_connection(("127.0.0.1", env.ssh_port), timeout=10)
    s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x01")
    s.close()
    # A client killed in the middle of an interactive session.
    t = Tty(env)
    t.read_until(PROMPT)
    t.send("system ver")
    t.kill()
    # A client killed while its command's output is on its way.
    p = subprocess.Popen([SSH] + COMMON + ["-o", "BatchMode=yes", "-i", env.key, "-p",
                                           str(env.ssh_port), "root@127.0.0.1",
                                           "vm process list"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    p.kill()
    p.wait(10)
    assert env.hostd.d.alive(), env.hostd.d.log()[-3000:]
    r = ssh(env, "system", "hostname", "get")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "   Host Name: esx\n"
    # The host's other duties go on: vpxd still sees its heartbeats.
    assert env.hostd.control("hosts").startswith("OK n=1")


def test_host_key_made_once_and_kept(env):
    keyfile = os.path.join(env.hostd.state, "ssh_host_ed25519_key")
    assert os.stat(keyfile).st_mode & 0o077 == 0
    fp = subprocess.run([SSH_KEYGEN, "-l", "-f", keyfile], capture_output=True, text=True,
                        timeout=30, check=True).stdout.split()[1]
    m = env.hostd.d.wait_log(r"ssh ready index=0 name=esx port=\d+ fingerprint=(\S+)")
    assert m.group(1) == fp
    assert "created SSH host key" in env.hostd.d.log()
    # What the client saw is that key.
    r = subprocess.run(["ssh-keyscan", "-p", str(env.ssh_port), "-t", "ed25519", "127.0.0.1"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode == 0 and r.stdout.strip():
        with open(os.path.join(env.tmp, "scanned.pub"), "w") as f:
            f.write(r.stdout.split(None, 1)[1])
        scanned = subprocess.run([SSH_KEYGEN, "-l", "-f", os.path.join(env.tmp, "scanned.pub")],
                                 capture_output=True, text=True, timeout=30).stdout.split()
        assert scanned[1] == fp


def test_group_writable_authorized_keys_is_ignored(env):
    os.chmod(env.authorized, 0o666)
    try:
        r = ssh(env, "system", "hostname", "get")
        assert r.returncode == 255
        env.hostd.d.wait_log(r"authorized_keys: writable by group or others: ignored")
    finally:
        os.chmod(env.authorized, 0o600)
    assert ssh(env, "system", "hostname", "get").returncode == 0


def two_free_ports():
    """P and P+1 both free now (hostd gives host i of a sim process port+i)."""
    for _ in range(50):
        p = free_port()
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip("no two consecutive free ports")


def test_each_simulated_host_has_its_own_shell(env):
    with tempfile.TemporaryDirectory(prefix="kvc-ssh-sim-") as tmp:
        port = two_free_ports()
        h = Hostd(tmp, hosts=2, name="sim", extra=["--ssh-port", str(port),
                                                    "--authorized-keys", env.authorized])
        try:
            fps = set()
            for i in range(2):
                m = h.d.wait_log(r"ssh ready index=%d name=sim-%d port=%d fingerprint=(\S+)"
                                 % (i, i, port + i))
                fps.add(m.group(1))
                r = subprocess.run([SSH] + COMMON + ["-o", "BatchMode=yes", "-i", env.key,
                                                     "-p", str(port + i), "root@127.0.0.1",
                                                     "system hostname get"],
                                   capture_output=True, text=True, timeout=60,
                                   stdin=subprocess.DEVNULL)
                assert r.returncode == 0, r.stderr
                assert r.stdout == "   Host Name: sim-%d\n" % i
            assert len(fps) == 2                # a host key per host
            # No admin password on this hostd: keys only, passwords refused.
            argv = [SSH] + COMMON + ["-o", "PreferredAuthentications=password",
                                     "-o", "PubkeyAuthentication=no",
                                     "-o", "NumberOfPasswordPrompts=1",
                                     "-p", str(port), "root@127.0.0.1", "system hostname get"]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, env=askpass_env(env, PASSWORD),
                               start_new_session=True)
            assert r.returncode == 255
            assert "Permission denied" in r.stderr
        finally:
            assert h.stop() == 0
