#!/usr/bin/env bash
# t_install: `meson install` puts what a package needs where Debian keeps it: the binary, the man page
# (roundhouse(8), which groff renders without a warning), the systemd unit and the annotated example
# configuration as <sysconfdir>/roundhouse/roundhouse.ini, which the installed binary accepts (-t).
set -euo pipefail
PORT_BASE=23300
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

bdir=$(dirname "$RH_BIN")
root=$E2E_TMP/root
out=$(meson install -C "$bdir" --destdir "$root" --no-rebuild --quiet 2>&1) || fail "meson install failed: $out"
installed=$(meson introspect "$bdir" --installed) || fail "meson introspect --installed failed"

# dest PATTERN: the installed path (under $root) of the source file whose path ends with PATTERN
dest() {
    python3 -c '
import json, sys
for src, dst in json.loads(sys.argv[1]).items():
    if src.endswith(sys.argv[2]):
        print(dst)
        break
' "$installed" "$1"
}
for f in roundhouse doc/roundhouse.8 etc/roundhouse.service etc/roundhouse.ini; do
    d=$(dest "$f")
    [[ -n $d ]] || fail "$f is not installed"
    [[ -f $root$d ]] || fail "$f: $root$d does not exist after meson install"
    log "$f -> $d"
done
assert_match "$(dest doc/roundhouse.8)" '/share/man/man8/roundhouse\.8$' "the man page's place"
assert_match "$(dest etc/roundhouse.service)" '/lib/systemd/system/roundhouse\.service$' "the unit's place"
assert_match "$(dest etc/roundhouse.ini)" '/etc/roundhouse/roundhouse\.ini$' "the example configuration's place"
pass "meson install: binary, man page, unit and example configuration"

warn=$(groff -man -Tutf8 -ww -z "$root$(dest doc/roundhouse.8)" 2>&1) || fail "groff failed: $warn"
[[ -z $warn ]] || fail "the man page has groff warnings: $warn"
text=$(groff -man -Tutf8 -P-cbou "$root$(dest doc/roundhouse.8)" 2>/dev/null) # plain text: no overstrike
for opt in -c -t -T SIGTERM SIGQUIT SIGHUP; do
    assert_contains "$text" "$opt" "the man page documents $opt"
done
pass "roundhouse(8) renders without warnings and documents the options and signals"

out=$("$root$(dest roundhouse)" -t -c "$root$(dest etc/roundhouse.ini)" 2>&1) || fail "the installed example does not pass -t: $out"
pass "the installed binary accepts the installed example: $out"
