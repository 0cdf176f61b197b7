#!/bin/sh
# libtapegrad.so exports exactly the public API: its defined dynamic symbols
# (nm -D) are the functions declared in include/tapegrad.h, and every one of
# those is marked TG_API.  The library is compiled with hidden visibility
# (meson.build), so a declaration without TG_API, a declared function that
# is never defined and an internal symbol that escapes all show here.
# Prints TAP.
#   Usage: tests/exports.sh LIB HEADER NM INCLUDE_DIR CC [CC_ARGS...]
# The header is read through the compiler's preprocessor (CC -E, with
# INCLUDE_DIR for the generated tapegrad_version.h) with TG_BUILDING_LIB
# defined, as the library sees it: TG_API then reads
# __attribute__((visibility("default"))).
set -u
lib=$1 header=$2 nm=$3 inc=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "NAME MARKED LINE" for each function declared in the header itself (not in
# the headers it includes): statements at brace depth 0 that are no typedef
# and have a parameter list; the body of an inline function ends its
# statement (inline functions are not exported and need no TG_API).
"$@" -E -DTG_BUILDING_LIB -I"$inc" -x c "$header" > "$tmp/pp" 2> "$tmp/cc.log" &&
awk -v hdr="$header" '
/^# [0-9]+ "/ {
    line = $2 - 1 # the next line is line $2
    match($0, /"[^"]*"/)
    inhdr = substr($0, RSTART + 1, RLENGTH - 2) == hdr
    next
}
{ line++ }
!inhdr { next }
{
    n = length($0)
    for (i = 1; i <= n; i++) {
        c = substr($0, i, 1)
        if (stmt == "" && (c == " " || c == "\t"))
            continue
        if (stmt == "")
            start = line
        stmt = stmt c
        if (c == "{")
            depth++
        else if (c == "}") {
            if (--depth == 0 && substr(stmt, 1, index(stmt, "{") - 1) ~ /\)[ \t]*$/)
                stmt = ""
        } else if (c == ";" && depth == 0) {
            decl(stmt, start)
            stmt = ""
        }
    }
    if (stmt != "")
        stmt = stmt " "
}
function decl(s, at,   marked, name) {
    if (s ~ /^typedef[^A-Za-z0-9_]/)
        return
    marked = gsub(/__attribute__[ \t]*\([ \t]*\([ \t]*visibility[ \t]*\([ \t]*"default"[ \t]*\)[ \t]*\)[ \t]*\)/, "", s) > 0
    if (!match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/))
        return # a variable: if exported, the comparison below names it
    name = substr(s, RSTART, RLENGTH)
    sub(/[ \t]*\($/, "", name)
    print name, marked, at
}' "$tmp/pp" > "$tmp/decls"
cc_rc=$?

# Every defined dynamic symbol, functions and data alike (data would be an
# internal table: the API exports no variables).  With ASan or UBSan the
# library only refers to the sanitizer runtime (a shared library) and
# defines none of its symbols: nothing to filter.  A coverage build
# (COVERAGE=1, -Db_coverage=true) links gcc's static libgcov.a into the
# library, and some of its symbols (__gcov_*, mangle_path) are exported: the
# symbols libgcov.a defines are left out, and only in that build.
: > "$tmp/runtime"
if [ "${COVERAGE:-0}" = 1 ]; then
    gcov=$("$@" -print-file-name=libgcov.a)
    [ -f "$gcov" ] && "$nm" -g --defined-only "$gcov" 2> /dev/null |
        awk 'NF >= 3 { print $3 }' | sort -u > "$tmp/runtime"
fi
"$nm" -D --defined-only "$lib" > "$tmp/nm" 2> "$tmp/nm.log"
nm_rc=$?
awk 'FILENAME == ARGV[1] { r[$1] = 1; next } NF >= 3 && !($3 in r)' \
    "$tmp/runtime" "$tmp/nm" > "$tmp/nm.api"
left_out=$(($(wc -l < "$tmp/nm") - $(wc -l < "$tmp/nm.api")))
mv "$tmp/nm.api" "$tmp/nm"
awk '{ print $3 }' "$tmp/nm" | sort -u > "$tmp/exported"
awk '{ print $1 }' "$tmp/decls" | sort -u > "$tmp/declared"

n=0
bad=0
check() { # check COND_STATUS "description": one TAP line
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        bad=$((bad + 1))
    fi
}

echo "1..4"
declared=$(wc -l < "$tmp/declared")
[ "$cc_rc" = 0 ] && [ "$declared" -gt 0 ]
check $? "$header declares $declared functions"
[ "$cc_rc" = 0 ] || sed 's/^/# /' "$tmp/cc.log"

awk '$2 == 0 { print "# not marked TG_API: " h ":" $3 ": " $1 }' h="$header" "$tmp/decls" \
    > "$tmp/unmarked"
[ ! -s "$tmp/unmarked" ]
check $? "every function declared in the header is marked TG_API"
cat "$tmp/unmarked"

exported=$(wc -l < "$tmp/exported")
[ "$nm_rc" = 0 ] && [ "$exported" -gt 0 ]
check $? "nm -D lists $exported symbols defined by $(basename "$lib")"
[ "$nm_rc" = 0 ] || sed 's/^/# /' "$tmp/nm.log"
[ "$left_out" = 0 ] || echo "# (and $left_out symbols of the coverage runtime libgcov.a, left out)"

comm -13 "$tmp/exported" "$tmp/declared" | sed 's/^/# declared but not exported: /' > "$tmp/diff"
awk 'FILENAME == ARGV[1] { d[$1] = 1; next }
     NF >= 3 && !($3 in d) { print "# exported but not declared: " $3 " (nm type " $2 ")" }' \
    "$tmp/declared" "$tmp/nm" | sort -u >> "$tmp/diff"
[ ! -s "$tmp/diff" ] && [ "$nm_rc" = 0 ] && [ "$cc_rc" = 0 ]
check $? "the exported symbols are exactly the declared functions"
cat "$tmp/diff"

[ "$bad" = 0 ]
