#!/bin/sh
# Config check mode against golden files: for each tests/unit/config/X.conf,
# `test_config -n X.conf` must print exactly X.ok and exit 0 for good-*.conf
# and 1 for bad-*.conf.  To refresh a golden file after a deliberate change:
#   (cd tests/unit/config && ../../../build/normal/tests/unit/test_config -n X.conf > X.ok)
srcdir=${KVC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${KVC_BUILDDIR:-.}
prog="$builddir/tests/unit/test_config"
dir="$srcdir/tests/unit/config"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# The dump of a good file must parse again and give the same dump (only the
# "# default" marks go, since every key is now written in the file).
reparse() {
    grep -v 'configuration OK$' "$tmp/out" > "$tmp/again.conf"
    (cd "$tmp" && "$prog" -n again.conf) > "$tmp/out2" 2>&1 || return 1
    sed 's/  # default$//' "$tmp/again.conf" > "$tmp/want2"
    grep -v 'configuration OK$' "$tmp/out2" | diff -u "$tmp/want2" - > "$tmp/diff"
}

files=$(cd "$dir" && ls *.conf)
n=0
for f in $files; do n=$((n + 1)); done
echo "1..$n"
i=0
fail=0
for f in $files; do
    i=$((i + 1))
    base=${f%.conf}
    (cd "$dir" && "$prog" -n "$f") > "$tmp/out" 2>&1
    rc=$?
    case "$base" in
    good-*) want=0 ;;
    *) want=1 ;;
    esac
    if [ ! -f "$dir/$base.ok" ]; then
        echo "not ok $i - $f: no $base.ok"
        fail=1
    elif [ "$rc" != "$want" ]; then
        echo "not ok $i - $f: exit $rc, expected $want"
        sed 's/^/# /' "$tmp/out"
        fail=1
    elif ! diff -u "$dir/$base.ok" "$tmp/out" > "$tmp/diff"; then
        echo "not ok $i - $f: output differs from $base.ok"
        sed 's/^/# /' "$tmp/diff"
        fail=1
    elif [ "$want" = 0 ] && ! reparse "$f"; then
        echo "not ok $i - $f: the normalised output does not parse back to itself"
        sed 's/^/# /' "$tmp/diff"
        fail=1
    else
        echo "ok $i - $f"
    fi
done
exit $fail
