"""The integration harness itself: daemons are started and stopped by PID."""
import os
import signal
import sys

import pytest

from kvctest import Daemon, wait_for


def test_daemon_stop_by_pid():
    d = Daemon([sys.executable, "-c", "import time,sys; print('ready', flush=True); time.sleep(60)"])
    d.wait_log(r"ready")
    assert d.alive()
    rc = d.stop(timeout=5)
    assert rc == -signal.SIGTERM
    assert not d.alive()


def test_wait_for_deadline():
    with pytest.raises(TimeoutError):
        wait_for(lambda: False, timeout=0.1, what="never")


def test_daemon_early_exit_is_reported():
    d = Daemon([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(RuntimeError):
        d.wait_log(r"never printed", timeout=5)
    assert d.stop() == 3
