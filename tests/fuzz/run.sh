#!/usr/bin/env bash
# One fuzz run, as a meson test (tests/fuzz/meson.build): run.sh BINARY NAME SEEDS DICT WORK
# Fuzzes for RH_FUZZ_SECONDS (default 15) on WORK/corpus, a fresh copy of the committed SEEDS (new
# inputs go there, never into the source tree). Prints one summary line, also kept in WORK/summary
# for scripts/fuzz:
#   fuzz_request: 1234567 execs (82304/s), corpus 345 units (24 seeds), 15 s: ok
# A crash, leak, timeout or failed check keeps its input in WORK/artifacts/ and names it; exit 1.
set -uo pipefail
bin=$1 name=$2 seeds=$3 dict=$4 work=$5
secs=${RH_FUZZ_SECONDS:-15}

rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
n_seeds=0
if [ -d "$seeds" ]; then
	cp "$seeds"/* "$work/corpus"/ 2>/dev/null
	n_seeds=$(find "$seeds" -maxdepth 1 -type f | wc -l)
fi
log=$work/fuzz.log
dict_arg=()
[ -f "$dict" ] && dict_arg=(-dict="$dict")

# abort_on_error: a sanitizer report is a crash libFuzzer records; leaks are checked (LSan)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# -timeout: one input taking 10 s is a hang; the outer timeout is a last resort
timeout -k 10 $((secs + 120)) "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
	-rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" "${dict_arg[@]}" "$work/corpus" >"$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
corp=$(sed -n 's/^#[0-9]*[[:space:]]*DONE .*corp: \([0-9]*\).*/\1/p' "$log" | tail -1)
[ -n "$corp" ] || corp=$(find "$work/corpus" -maxdepth 1 -type f | wc -l)
if [ $rc -eq 0 ]; then
	verdict=ok
else
	crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
	verdict="FAILED (exit $rc)${crash:+, input saved: $crash}"
fi
line="$name: ${execs:-?} execs (${rate:-?}/s), corpus ${corp} units (${n_seeds} seeds), ${secs} s: $verdict"
echo "$line" >"$work/summary"
echo "$line"
if [ $rc -ne 0 ]; then
	# the report: sanitizer or check message, stack, and the input as bytes
	echo "--- $log (tail) ---"
	tail -n 60 "$log"
	[ -n "${crash:-}" ] && [ -f "$crash" ] && { echo "--- $crash ---"; od -A x -t x1z -v "$crash" | head -n 64; }
	exit 1
fi
exit 0
