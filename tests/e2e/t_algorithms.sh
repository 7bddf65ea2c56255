#!/usr/bin/env bash
# t_algorithms: the [upstream] algorithms, measured end to end through the real binary.
#  1. weighted_round_robin, weights 5,1,1, one worker: 70 requests give exactly 50/10/10, and the
#     heaviest backend never runs more than 3 times in a row (the smooth schedule; a plain weighted
#     order would give runs of 5).
#  2. random, weights 5,1,1, two workers: over 700 requests A gets 5/7 (+-7 points), B and C 1/7
#     (+-6 points) each.
#  3. least_conn: backend S answers every request after 200 ms (origin --delay-ms), B and C at once;
#     8 concurrent keep-alive clients for 1.5 s: S gets fewer requests than B and than C (far fewer:
#     under a quarter of either).
#     The same load under round_robin gives S about a third of the requests.
#  4. consistent_hash, hash_key = uri, backends A-D: 40 URIs land on the same backend every time,
#     every backend has some. C's origin stopped (marked down): the URIs of A, B and D stay put, C's
#     go elsewhere (200). C back on its port (marked up): its URIs return to it.
#  5. consistent_hash, hash_key = header:X-User: 20 users x 3 requests, each user always on one
#     backend (the users spread over more than one); requests without the header get 200, spread.
#  6. weight=0 drains: A weight=1, B weight=0, round_robin: 20 requests all on A.
set -euo pipefail
PORT_BASE=22300
E2E_DIR=${E2E_DIR:-$(cd "$(dirname "$0")" && pwd)}
source "$E2E_DIR/lib.sh"

# ---------------------------------------------------------------- client

# A keep-alive HTTP client (python3 http.client on loopback; 10 s per request).
#   client.py seq PORT       one request per stdin line "PATH [NAME: VALUE]", all on one
#                            connection (a new one after an error); prints "STATUS BACKEND" per line
#                            (000 - when the request failed)
#   client.py load PORT CONNS SECONDS PATH
#                            CONNS threads, each on its own keep-alive connection, request PATH
#                            back to back for SECONDS; prints "NAME=COUNT ..." by X-Backend, then
#                            "non200=N errors=N"
cat >"$E2E_TMP/client.py" <<'EOF'
import collections, http.client, sys, threading, time

def connect(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)

def one(conn, path, headers):
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("X-Backend") or "-"

def seq(port):
    conn = connect(port)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        path, _, hdr = line.partition(" ")
        headers = {}
        if hdr:
            k, _, v = hdr.partition(":")
            headers[k.strip()] = v.strip()
        try:
            st, be = one(conn, path, headers)
        except Exception:
            conn.close()
            conn = connect(port)
            st, be = 0, "-"
        print("%03d %s" % (st, be))
    conn.close()

def load(port, conns, seconds, path):
    counts = collections.Counter()
    bad = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    def run():
        c = connect(port)
        mine, mybad = collections.Counter(), collections.Counter()
        while time.monotonic() < deadline:
            try:
                st, be = one(c, path, {})
                if st == 200:
                    mine[be] += 1
                else:
                    mybad["non200"] += 1
            except Exception:
                mybad["errors"] += 1
                c.close()
                c = connect(port)
                time.sleep(0.01)
        c.close()
        with lock:
            counts.update(mine)
            bad.update(mybad)
    ts = [threading.Thread(target=run) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(" ".join("%s=%d" % kv for kv in sorted(counts.items())))
    print("non200=%d errors=%d" % (bad["non200"], bad["errors"]))

if sys.argv[1] == "seq":
    seq(int(sys.argv[2]))
else:
    load(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
EOF
client() { timeout 60 python3 "$E2E_TMP/client.py" "$@"; }

# count NAME COUNTS: NAME's count in a "A=1 B=2" line (0 when absent)
count() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2" | grep . || echo 0; }

# seq_backends N PATH: N requests for PATH on one connection, all must be 200; sets SEQ (the
# backends, one letter each, in order)
seq_backends() {
    local n=$1 path=$2 out
    out=$(for ((i = 0; i < n; i++)); do echo "$path"; done | client seq "$PX")
    local bad
    bad=$(awk '$1 != 200' <<<"$out" | head -n 3)
    [[ -z $bad ]] || fail "requests for $path via :$PX: not all 200: $bad"
    SEQ=$(awk '{ printf "%s", $2 }' <<<"$out")
    [[ ${#SEQ} == "$n" ]] || fail "expected $n answers, got ${#SEQ}: $SEQ"
}
tally() { # tally STRING LETTER: occurrences of LETTER
    local s=${1//[^$2]/}
    echo "${#s}"
}

# ---------------------------------------------------------------- origins

alloc_port PA
alloc_port PB
alloc_port PC
alloc_port PD
alloc_port PS
start_origin A "$PA"
start_origin B "$PB"
start_origin C "$PC"
start_origin D "$PD"
start_origin S "$PS" --delay-ms 200

# ---------------------------------------------------------------- 1. weighted_round_robin

t0=$(now_ms)
alloc_port PX
INI_THREADS=1 INI_ALGORITHM=weighted_round_robin write_ini "$E2E_TMP/wrr.ini" "$PX" "" \
    "backend = 127.0.0.1:$PA weight=5" "backend = 127.0.0.1:$PB weight=1" "backend = 127.0.0.1:$PC weight=1"
start_proxy "$E2E_TMP/wrr.ini" proxy-wrr
seq_backends 70 /
na=$(tally "$SEQ" A) nb=$(tally "$SEQ" B) nc=$(tally "$SEQ" C)
[[ "$na/$nb/$nc" == 50/10/10 ]] || fail "weighted_round_robin 5,1,1: 70 requests gave A/B/C = $na/$nb/$nc, expected 50/10/10: $SEQ"
longest=$(grep -o 'A*' <<<"$SEQ" | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
assert_le "$longest" 3 "weighted_round_robin 5,1,1: longest run of A (smooth schedule): $SEQ"
pass "weighted_round_robin 5,1,1 (1 worker): A/B/C = $na/$nb/$nc of 70, longest run of A $longest; first cycle ${SEQ:0:7} ($(($(now_ms) - t0)) ms)"

# ---------------------------------------------------------------- 2. random

t0=$(now_ms)
alloc_port PX
INI_THREADS=2 INI_ALGORITHM=random write_ini "$E2E_TMP/random.ini" "$PX" "" \
    "backend = 127.0.0.1:$PA weight=5" "backend = 127.0.0.1:$PB weight=1" "backend = 127.0.0.1:$PC weight=1"
start_proxy "$E2E_TMP/random.ini" proxy-random
seq_backends 700 /
na=$(tally "$SEQ" A) nb=$(tally "$SEQ" B) nc=$(tally "$SEQ" C)
assert_eq "$((na + nb + nc))" 700 "random: every answer from A, B or C"
# expected 500/100/100; +-7 points of 700 = 49, +-6 points = 42 (about 4 standard deviations)
((na >= 451 && na <= 549)) || fail "random 5,1,1: A got $na of 700 ($((na * 100 / 700))%), expected 5/7 = 71% +-7 points"
((nb >= 58 && nb <= 142)) || fail "random 5,1,1: B got $nb of 700, expected 1/7 = 14% +-6 points"
((nc >= 58 && nc <= 142)) || fail "random 5,1,1: C got $nc of 700, expected 1/7 = 14% +-6 points"
# not the weighted schedule in disguise: some run of A is longer than 3
longest=$(grep -o 'A*' <<<"$SEQ" | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
pass "random 5,1,1 (2 workers): A/B/C = $na/$nb/$nc of 700 ($(awk -v a="$na" -v b="$nb" -v c="$nc" 'BEGIN { printf "%.1f/%.1f/%.1f%%", a / 7, b / 7, c / 7 }')), longest run of A $longest ($(($(now_ms) - t0)) ms)"

# ---------------------------------------------------------------- 3. least_conn vs round_robin

t0=$(now_ms)
declare -A LOAD=()
LOAD_S=1.5 # seconds of load per algorithm
for alg in least_conn round_robin; do
    alloc_port PX
    INI_THREADS=2 INI_ALGORITHM=$alg write_ini "$E2E_TMP/$alg.ini" "$PX" "$PS $PB $PC"
    start_proxy "$E2E_TMP/$alg.ini" "proxy-$alg"
    out=$(client load "$PX" 8 "$LOAD_S" /)
    log "$alg: $(tr '\n' ' ' <<<"$out")"
    tail -n 1 <<<"$out" | grep -q '^non200=0 errors=0$' || fail "$alg under load: $(tail -n 1 <<<"$out")"
    LOAD[$alg]=$(head -n 1 <<<"$out")
done
lc=${LOAD[least_conn]} rr=${LOAD[round_robin]}
s=$(count S "$lc") b=$(count B "$lc") c=$(count C "$lc")
rs=$(count S "$rr") rb=$(count B "$rr") rc=$(count C "$rr")
rt=$((rs + rb + rc))
assert_ge "$rt" 60 "round_robin under load: requests answered ($rr)"
# the baseline: round robin gives the slow backend its third whatever its speed
((rs * 100 >= rt * 25 && rs * 100 <= rt * 42)) ||
    fail "round_robin: slow S got $rs of $rt ($rr), expected about a third"
((s < b && s < c)) || fail "least_conn: slow S got $s, not fewer than B ($b) and C ($c)"
# and far fewer (typically under a hundredth; a quarter leaves room for slow sanitizer builds)
((s * 4 < b && s * 4 < c)) || fail "least_conn: slow S got $s, not under a quarter of B ($b) and C ($c)"
pass "least_conn, S slow (200 ms), 8 clients x $LOAD_S s: S/B/C = $s/$b/$c; round_robin on the same: S/B/C = $rs/$rb/$rc (S $((rs * 100 / rt))%) ($(($(now_ms) - t0)) ms)"

# ---------------------------------------------------------------- 4. consistent_hash, hash_key = uri

t0=$(now_ms)
alloc_port PX
INI_THREADS=2 INI_ALGORITHM=consistent_hash write_ini "$E2E_TMP/chash.ini" "$PX" "$PA $PB $PC $PD" "hash_key = uri"
start_proxy "$E2E_TMP/chash.ini" proxy-chash
CH_LOG=$PROXY_LOG
uris=()
for i in $(seq 1 40); do uris+=("/item/$i?v=$((i * 7))"); done

# route_all: each URI once, in order, on one connection; sets ROUTE (letters, one per URI)
route_all() {
    local out bad
    out=$(printf '%s\n' "${uris[@]}" | client seq "$PX")
    bad=$(awk '$1 != 200' <<<"$out" | head -n 3)
    [[ -z $bad ]] || fail "consistent_hash: not all 200 ($1): $bad"
    ROUTE=$(awk '{ printf "%s", $2 }' <<<"$out")
    [[ ${#ROUTE} == 40 ]] || fail "consistent_hash ($1): expected 40 answers, got $ROUTE"
}
route_all "first pass"
first=$ROUTE
route_all "second pass"
assert_eq "$ROUTE" "$first" "consistent_hash: each URI on the same backend both times"
for n in A B C D; do
    [[ $first == *$n* ]] || fail "consistent_hash: backend $n got none of the 40 URIs: $first"
done
spread="A/B/C/D = $(tally "$first" A)/$(tally "$first" B)/$(tally "$first" C)/$(tally "$first" D)"

# C's origin goes away
up_line="backend 127.0.0.1:$PC up"
down_line="backend 127.0.0.1:$PC down"
ups_before=$(log_count "$CH_LOG" "$up_line")
stop_origin C
_logged_more() { (($(log_count "$1" "$2") > $3)); }
wait_until 5 _logged_more "$CH_LOG" "$down_line" 0 || fail "C not marked down within 5 s"
route_all "C down"
down=$ROUTE
moved=""
for ((i = 0; i < 40; i++)); do
    was=${first:i:1} now=${down:i:1}
    if [[ $was == C ]]; then
        [[ $now != C ]] || fail "consistent_hash: ${uris[i]} still answered by C after it went down"
        moved+=$now
    else
        assert_eq "$now" "$was" "consistent_hash: ${uris[i]} (on $was) with C down"
    fi
done
# C back on its port
start_origin C "$PC"
wait_until 5 _logged_more "$CH_LOG" "$up_line" "$ups_before" || fail "C not marked up within 5 s of its restart"
route_all "C back"
assert_eq "$ROUTE" "$first" "consistent_hash: after C came back every URI is where it was at first"
pass "consistent_hash uri, 40 URIs x 2 stable, $spread; C down: its $(tally "$first" C) URIs moved to $moved (all 200), the other $((40 - $(tally "$first" C))) stayed; C up: all back ($(($(now_ms) - t0)) ms)"

# ---------------------------------------------------------------- 5. consistent_hash, hash_key = header:X-User

t0=$(now_ms)
alloc_port PX
INI_THREADS=2 INI_ALGORITHM=consistent_hash write_ini "$E2E_TMP/hdr.ini" "$PX" "$PA $PB $PC $PD" "hash_key = header:X-User"
start_proxy "$E2E_TMP/hdr.ini" proxy-hdr
# rounds interleaved (u1..u20, u1..u20, u1..u20) so that a spread by turn would show
# (the header name written X-User, x-user and X-USER: matched case-insensitively; the path differs by round)
hname=([1]=X-User [2]=x-user [3]=X-USER)
out=$(for r in 1 2 3; do for u in $(seq 1 20); do echo "/r$r ${hname[r]}: user-$u"; done; done | client seq "$PX")
bad=$(awk '$1 != 200' <<<"$out" | head -n 3)
[[ -z $bad ]] || fail "header:X-User: not all 200: $bad"
all=$(awk '{ printf "%s", $2 }' <<<"$out")
[[ ${#all} == 60 ]] || fail "header:X-User: expected 60 answers: $all"
users=${all:0:20}
assert_eq "${all:20:20}" "$users" "header:X-User: round 2 (by user) equals round 1"
assert_eq "${all:40:20}" "$users" "header:X-User: round 3 (by user) equals round 1"
distinct=$(grep -o . <<<"$users" | sort -u | tr -d '\n')
assert_ge "${#distinct}" 2 "header:X-User: 20 users on more than one backend ($users)"
seq_backends 12 /no-user
nodistinct=$(grep -o . <<<"$SEQ" | sort -u | tr -d '\n')
assert_ge "${#nodistinct}" 2 "header:X-User: requests without the header spread ($SEQ)"
pass "hash_key header:X-User: 20 users x 3 each on one backend (users by backend: $users, on $distinct); 12 without the header all 200, spread $SEQ ($(($(now_ms) - t0)) ms)"

# ---------------------------------------------------------------- 6. weight=0 drains

t0=$(now_ms)
alloc_port PX
INI_THREADS=2 write_ini "$E2E_TMP/drain.ini" "$PX" "" \
    "backend = 127.0.0.1:$PA weight=1" "backend = 127.0.0.1:$PB weight=0"
start_proxy "$E2E_TMP/drain.ini" proxy-drain
b0=$(origin_stat "$PB" requests)
seq_backends 20 /
assert_eq "$SEQ" "AAAAAAAAAAAAAAAAAAAA" "round_robin with B weight=0: every request on A"
assert_eq "$(origin_stat "$PB" requests)" "$b0" "B (weight=0): its origin's request count did not move"
pass "round_robin, A weight=1, B weight=0: 20/20 on A ($SEQ), B's origin saw none ($(($(now_ms) - t0)) ms)"
