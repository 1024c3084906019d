#!/bin/sh
# embed.sh OUT.c SRCDIR FILE.sql...: turn the numbered migrations into a C table
# (name, SQL text) so vpxd carries its schema inside the binary.
set -e
out=$1; src=$2; shift 2
{
    echo "/* Generated from the sql/ migrations by sql/embed.sh: do not edit. */"
    echo "#include \"vpxd/migrations.h\""
    echo "const struct vpxd_migration vpxd_migrations[] = {"
    for f in "$@"; do
        name=$(basename "$f" .sql)
        f=$src/$f
        printf '    { "%s",\n' "$name"
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/      "/' -e 's/$/\\n"/' "$f"
        echo "    },"
    done
    echo "    { 0, 0 }"
    echo "};"
} > "$out.tmp"
mv "$out.tmp" "$out"
