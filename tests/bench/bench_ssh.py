#!/usr/bin/python3
"""BENCH ssh-exec: one command on a host through its SSH shell, against the
same command through kvcli and the host's HTTPS endpoint.

A real hostd (sim) with its SSH shell and HTTPS endpoint on 127.0.0.1.  Each
run starts a fresh client process, as a script would: `ssh -p P root@host
esxcli system version get` (OpenSSH, key login: TCP, key exchange, public-key
authentication, exec, exit status) and `kvcli --server https://host:P ...
system version get` (TLS handshake with thumbprint check, POST /api/session
with the password, the GET).  The two print the same bytes; the figure is
the wall time of the client process, median of the runs.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

NAME = "ssh-exec"
RUNS = max(10, int(os.environ.get("KVC_BENCH_RUNS", "20")))
PASSWORD = "bench-Pa55"


def timed(argv, env=None):
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, env=env)
    dt = (time.monotonic() - t0) * 1000
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (argv[0], r.returncode, r.stderr))
    return dt, r.stdout


def main():
    from hostd_util import Hostd, rpc_missing_reason
    from kvctest import binpath

    why = rpc_missing_reason()
    if not why and not (shutil.which("ssh") and shutil.which("ssh-keygen")):
        why = "OpenSSH client not installed"
    if not why and not os.path.exists(binpath("cli/kvcli")):
        why = "kvcli not built"
    if why:
        print("BENCH-SKIP %s %s" % (NAME, why))
        return 0
    with tempfile.TemporaryDirectory(prefix="kvc-bench-ssh-") as tmp:
        key = os.path.join(tmp, "id")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        keys = os.path.join(tmp, "authorized_keys")
        shutil.copy(key + ".pub", keys)
        os.chmod(keys, 0o600)
        h = Hostd(tmp, extra=["--ssh-port", "any", "--api-port", "any",
                              "--admin-password", PASSWORD, "--authorized-keys", keys])
        try:
            ssh_port = int(h.d.wait_log(r"ssh ready index=0 name=\S+ port=(\d+) ").group(1))
            m = h.d.wait_log(r"api ready index=0 name=\S+ port=(\d+) thumbprint=(\S+)")
            api_port = int(m.group(1))
            ssh = ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
                   "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                   "-i", key, "-p", str(ssh_port), "root@127.0.0.1",
                   "esxcli", "system", "version", "get"]
            kvcli = [binpath("cli/kvcli"), "--server", "https://127.0.0.1:%d" % api_port,
                     "--user", "root", "--password", PASSWORD, "--thumbprint", m.group(2),
                     "system", "version", "get"]
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp}
            # One of each first: same output, and nothing cold in the figures.
            a, out_ssh = timed(ssh)
            b, out_kvcli = timed(kvcli, env)
            assert out_ssh == out_kvcli, (out_ssh, out_kvcli)
            ours, peer = [], []
            for _ in range(RUNS):
                ours.append(timed(ssh)[0])
                peer.append(timed(kvcli, env)[0])
        finally:
            h.stop()
    mo, mp = statistics.median(ours), statistics.median(peer)
    print("BENCH %s ours=%.1f kvcli-https=%.1f unit=ms ratio=%.2f median=%.1f spread=%.1f runs=%d"
          % (NAME, mo, mp, mo / mp, mo, max(ours) - min(ours), RUNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
