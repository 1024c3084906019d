#!/bin/sh
# The default configs shipped in packaging/etc must pass each daemon's
# check mode (-n), so a fresh package install starts.  A daemon that is not
# built in this tree yet is skipped, with the reason.
srcdir=${KVC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${KVC_BUILDDIR:-.}
echo "1..3"
i=0
fail=0
for spec in "vmkd vmkernel-kvm/vmkd -f" "hostd hostd/hostd -c" "vpxd vpxd/vpxd -f"; do
    set -- $spec
    i=$((i + 1))
    conf="$srcdir/packaging/etc/$1.conf"
    if [ ! -x "$builddir/$2" ]; then
        echo "ok $i - $1.conf # SKIP $2 is not built in this tree yet"
        continue
    fi
    if out=$("$builddir/$2" -n "$3" "$conf" 2>&1 >/dev/null); then
        echo "ok $i - $1.conf passes '$1 -n'"
    else
        echo "not ok $i - $1.conf fails '$1 -n'"
        printf '%s\n' "$out" | sed 's/^/# /'
        fail=1
    fi
done
exit $fail
