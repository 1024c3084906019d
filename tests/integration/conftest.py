"""Report every pytest outcome as a TAP line on fd 3 (see pytest-tap)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    _tap = os.fdopen(3, "w", buffering=1)
except OSError:
    _tap = None
_count = 0
_seen = set()


def _emit(line):
    if _tap is not None:
        _tap.write(line + "\n")
        _tap.flush()


def pytest_runtest_logreport(report):
    global _count
    nodeid = report.nodeid.split("::", 1)[-1]
    if report.when == "setup" and report.passed:
        return
    if report.when == "teardown" and report.passed:
        return
    if report.nodeid in _seen and not report.failed:
        return
    if report.skipped:
        reason = ""
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            reason = str(report.longrepr[2]).replace("Skipped: ", "")
        _count += 1
        _seen.add(report.nodeid)
        _emit("ok %d %s # SKIP %s" % (_count, nodeid, reason or "skipped"))
        return
    _count += 1
    _seen.add(report.nodeid)
    if report.passed:
        _emit("ok %d %s" % (_count, nodeid))
    else:
        what = "" if report.when == "call" else " (%s)" % report.when
        _emit("not ok %d %s%s" % (_count, nodeid, what))
        for ln in str(report.longrepr).splitlines()[-15:]:
            _emit("# " + ln)


def pytest_sessionfinish(session, exitstatus):
    if _count:
        _emit("1..%d" % _count)
