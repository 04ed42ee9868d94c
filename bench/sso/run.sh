#!/usr/bin/env bash
# SSO benchmark: the OpenID Connect side of the hub (HMS-ACH) against node's
# oidc-provider, one server after the other in the same run:
#
#   refresh        POST token grant_type=refresh_token, rotation (wrk + sso.lua)
#   introspection  POST introspect token=ACCESS_TOKEN (wrk + sso.lua)
#   code flow      authorize → sign-in page → POST username/password → code →
#                  token, as complete flows per second (node codeflow.mjs)
#   argon2         raw argon2id verifications per second with the hub's
#                  parameters, node `argon2`, 2 workers (argon2-rate.mjs)
#
# and prints a Markdown report (also written to bench/sso/last-run.md).
#
# Usage:
#   bash bench/sso/run.sh                                   # builds the hub
#   HUB_BIN=target/release/hms-ach bash bench/sso/run.sh
#   BENCH_ONLY=oidc-provider DURATION=10 bash bench/sso/run.sh
#
# Knobs (environment):
#   BENCH_ONLY            hub | oidc-provider | (empty: both)
#   DURATION              measured seconds, refresh and introspection     [20]
#   WARMUP                warm-up seconds before each of them             [5]
#   THREADS/CONNECTIONS   wrk -t / -c                                     [2 / 32]
#   POOL                  refresh-token families minted per server        [256]
#   MINT_CONCURRENCY      concurrent code flows while minting             [8]
#   FLOW_CONCURRENCY      concurrent code-flow loops (the code-flow load) [8]
#   FLOW_DURATION         measured seconds of code flows                  [DURATION]
#   FLOW_WARMUP           warm-up seconds of code flows                   [3]
#   ARGON2_WORKERS        parallel argon2id verifications                 [2]
#   ARGON2_DURATION       seconds of argon2id verifications               [10]
#   HUB_BIN               hub binary; when unset: cargo build --release -p hms-ach
#   HUB_PORT, OIDC_PORT   ports on 127.0.0.1                              [free ports]
#   HUB_LOG               RUST_LOG for the hub                            [warn]
#   NODE_DIR              npm install folder for oidc-provider and argon2
#                                                 [${TMPDIR:-/tmp}/hms-bench-sso-node]
#   OIDC_PROVIDER_VERSION npm range                                       [9]
#   ARGON2_NPM_VERSION    npm range of `argon2`                           [0.x]
#   QUIET_TIMEOUT         seconds to wait for a quiet machine before each
#                         measured run (0: do not wait)                   [900]
#   BUSY_RETRIES          measure again when other processes used >20% of
#                         a core during a measured run, up to this often  [2]
#   BENCH_OUT             report file                      [bench/sso/last-run.md]
#   BENCH_KEEP=1          keep the temporary folder (databases, logs, tokens)
#   MAX_ERROR_RATE        failing fraction that aborts the run            [0.001]
set -euo pipefail

# The knobs given by the caller, for the report's "command" line.
GIVEN=""
for v in BENCH_ONLY DURATION WARMUP THREADS CONNECTIONS POOL MINT_CONCURRENCY FLOW_CONCURRENCY \
  FLOW_DURATION FLOW_WARMUP ARGON2_WORKERS ARGON2_DURATION HUB_BIN HUB_LOG OIDC_PROVIDER_VERSION \
  QUIET_TIMEOUT BUSY_RETRIES MAX_ERROR_RATE; do
  if [[ -n "${!v+x}" ]]; then GIVEN+="$v=${!v} "; fi
done

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

BENCH_ONLY=${BENCH_ONLY:-}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
POOL=${POOL:-256}
MINT_CONCURRENCY=${MINT_CONCURRENCY:-8}
FLOW_CONCURRENCY=${FLOW_CONCURRENCY:-8}
FLOW_DURATION=${FLOW_DURATION:-$DURATION}
FLOW_WARMUP=${FLOW_WARMUP:-3}
ARGON2_WORKERS=${ARGON2_WORKERS:-2}
ARGON2_DURATION=${ARGON2_DURATION:-10}
HUB_LOG=${HUB_LOG:-warn}
NODE_DIR=${NODE_DIR:-${TMPDIR:-/tmp}/hms-bench-sso-node}
OIDC_PROVIDER_VERSION=${OIDC_PROVIDER_VERSION:-9}
ARGON2_NPM_VERSION=${ARGON2_NPM_VERSION:-0.x}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-900}
BUSY_RETRIES=${BUSY_RETRIES:-2}
BENCH_OUT=${BENCH_OUT:-$SCRIPT_DIR/last-run.md}
MAX_ERROR_RATE=${MAX_ERROR_RATE:-0.001}

# The relying party and the person, the same on both servers. The hub's
# --demo seeds ana.diallo0 with this password; oidc-provider-server.mjs has
# that one account.
REDIRECT_URI=http://127.0.0.1:9/cb
SCOPE="openid profile email offline_access"
# The five demo personas without a privileged role (serve --demo gives each the demo
# password): the code-flow loops sign in as them round robin, on both servers. The hub
# administrator (omar.xu40) is left out: a privileged role needs a second factor, which
# oidc-provider's sign-in here has no counterpart for.
USERNAME_="ana.diallo0 zoe.williams25 gabriel.tanaka32 lucia.chen37 yusuf.patel24"
PASSWORD_=riverside-demo-2026
# argon2id cost: the hub's defaults (auth.argon2_*), given to node too.
ARGON2_M=19456 ARGON2_T=2 ARGON2_P=1
LUA="$SCRIPT_DIR/sso.lua"

case "$BENCH_ONLY" in
  ""|hub|oidc-provider) ;;
  *) echo "run.sh: BENCH_ONLY must be 'hub', 'oidc-provider' or empty, not '$BENCH_ONLY'" >&2; exit 2 ;;
esac
want() { [[ -z "$BENCH_ONLY" || "$BENCH_ONLY" == "$1" ]]; }

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
SERVER_PIDS=()
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hms-bench-sso.XXXXXX")
stop_server() {
  local pid=$1
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  local pid
  for pid in "${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}"; do stop_server "$pid"; done
  if [[ "${BENCH_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
    log "work folder kept: $WORK_DIR"
  else
    rm -rf "$WORK_DIR"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

if ! command -v wrk >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "wrk missing: installing it with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
  fi
  need wrk "install it with: apt-get install -y wrk"
fi
need curl "apt-get install -y curl"
need python3 "used to parse JSON and pick free ports"
# node drives the code flows and runs the argon2 figure for both servers.
need node "Node.js 20+ with npm"
need npm "Node.js 20+ with npm"

# Every wrk run loses up to CONNECTIONS+THREADS families (see sso.lua); the
# warm-up, the measured run and its retries must leave each thread more
# tokens than it has connections.
(( (POOL - (BUSY_RETRIES + 2) * (CONNECTIONS + THREADS)) / THREADS > CONNECTIONS / THREADS )) ||
  die "POOL=$POOL is too small for CONNECTIONS=$CONNECTIONS, THREADS=$THREADS and BUSY_RETRIES=$BUSY_RETRIES: each wrk thread must keep more refresh tokens than connections"

# npm packages, into NODE_DIR only (never globally, never into the repo).
install_node_packages() {
  local have=1
  [[ -f "$NODE_DIR/node_modules/oidc-provider/package.json" ]] || have=0
  [[ -f "$NODE_DIR/node_modules/argon2/package.json" ]] || have=0
  if (( !have )); then
    log "installing oidc-provider@$OIDC_PROVIDER_VERSION and argon2@$ARGON2_NPM_VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    [[ -f "$NODE_DIR/package.json" ]] ||
      printf '{ "name": "hms-bench-sso", "private": true, "type": "module" }\n' > "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error \
      "oidc-provider@$OIDC_PROVIDER_VERSION" "argon2@$ARGON2_NPM_VERSION") >&2
  fi
  OIDC_VERSION=$(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/oidc-provider/package.json")
  ARGON2_NPM=$(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/argon2/package.json")
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL PID LOGFILE [SECONDS]: wait until GET URL answers 200.
wait_http() {
  local url=$1 pid=$2 logfile=$3 secs=${4:-60} i
  for ((i = 0; i < secs * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$logfile" >&2 || true
      die "server (pid $pid) exited before $url answered"
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 40 "$logfile" >&2 || true
  die "$url did not answer 200 within ${secs}s"
}

# json_get FILE KEY...: print the values of top-level keys, one a line.
json_get() {
  python3 - "$@" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
try:
    doc = json.loads(text)
except ValueError:
    # tolerate log lines around the JSON document
    doc = next(json.loads(l) for l in reversed(text.splitlines()) if l.strip().startswith("{"))
for k in sys.argv[2:]:
    print(doc[k])
PY
}

# cpu_ticks PID: utime+stime of the whole process (all threads), in ticks.
# /proc/PID/stat field 2 (comm) may contain spaces; read past the last ')'.
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) }
  # fields after comm start at field 3 (state); utime=14, stime=15 → offsets 12, 13
  awk '{ print $12 + $13 }' <<<"$stat"
}
CLK_TCK=$(getconf CLK_TCK)

# sys_busy_ticks: non-idle CPU time of the whole machine, in ticks.
sys_busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# children_cpu_s: user+system seconds of this shell's reaped children (wrk,
# node drivers). `times` must run in this shell, not in a $(...) subshell:
# hence the file. Call it as: children_cpu_s; c0=$CHILD_CPU
children_cpu_s() {
  times >"$WORK_DIR/times"
  CHILD_CPU=$(awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
    print t }' "$WORK_DIR/times")
}

vm_hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
vm_rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# reset_hwm PID: restart the VmHWM high-water mark at the current RSS
# (proc(5), clear_refs "5"), so each benchmark's peak is its own, not the
# start-up's (the hub's --demo seeding hashes passwords, and so does minting).
# Needs the right to write the process's clear_refs (root, or same user).
HWM_RESETS=1
reset_hwm() {
  if ! { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null; then
    (( HWM_RESETS )) && log "WARNING: cannot reset VmHWM (/proc/$1/clear_refs): peak RSS figures are since start"
    HWM_RESETS=0
  fi
}

# wait_quiet PID: the machine has 2 cores shared by server and load
# generator, so a compile or test run elsewhere skews the figures badly.
# Wait (up to QUIET_TIMEOUT s) until processes other than the server use
# under 15% of a core over a 2 s sample.
wait_quiet() {
  local pid=$1 waited=0 s0 s1 p0 p1 busy
  (( QUIET_TIMEOUT > 0 )) || return 0
  while :; do
    s0=$(sys_busy_ticks); p0=$(cpu_ticks "$pid"); sleep 2
    s1=$(sys_busy_ticks); p1=$(cpu_ticks "$pid")
    busy=$(( 100 * ((s1 - s0) - (p1 - p0)) / (2 * CLK_TCK) ))
    (( busy < 15 )) && return 0
    if (( waited >= QUIET_TIMEOUT )); then
      log "WARNING: still busy after ${QUIET_TIMEOUT}s (other processes ${busy}% of a core): measuring anyway"
      return 0
    fi
    (( waited == 0 )) && log "machine busy (other processes ${busy}% of a core; $(pgrep -x rustc >/dev/null && echo 'rustc is running' || echo 'see top')): waiting up to ${QUIET_TIMEOUT}s"
    sleep 8; waited=$((waited + 10))
  done
}

field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -n1 | cut -d= -f2; }

# ---------------------------------------------------------------- results
# Keyed "server:bench", bench = refresh | introspect | flow.
declare -A R_RATE R_P50 R_P99 R_ERR R_CPU R_GEN R_OTHER R_RSS R_CMD
declare -A TOKENS      # server → "access …; id …" (JWT headers of the first code-flow response)
declare -A SETUP_RSS   # server → memory after start and minting
declare -A LABEL
SERVERS=()

# measure SERVER BENCH PID CMD...: run CMD (the load generator), keep its
# stdout in $MEASURED, and record server CPU, load-generator CPU and other
# processes' CPU over the run (100 = one core). When other processes used
# more than 20% of a core (a build started meanwhile, say), run it again, up
# to BUSY_RETRIES times; the last run is kept.
declare -A R_TRIES
measure() {
  local server=$1 bench=$2 pid=$3; shift 3
  local k="$server:$bench" try
  for ((try = 1; ; try++)); do
    measure_once "$server" "$bench" "$pid" "$@"
    R_TRIES[$k]=$try
    (( R_OTHER[$k] > 20 && try <= BUSY_RETRIES )) || break
    log "$server $bench: other processes used ${R_OTHER[$k]}% of a core: measuring again ($try of $BUSY_RETRIES retries)"
  done
}
measure_once() {
  local server=$1 bench=$2 pid=$3; shift 3
  local k="$server:$bench" s0 s1 c0 c1 t0 t1 w0 w1
  wait_quiet "$pid"
  s0=$(sys_busy_ticks); children_cpu_s; c0=$CHILD_CPU
  t0=$(cpu_ticks "$pid"); w0=$(date +%s.%N)
  MEASURED=$("$@" 2>"$WORK_DIR/$server-$bench.err") ||
    { cat "$WORK_DIR/$server-$bench.err" >&2; die "$server $bench: the load generator failed"; }
  t1=$(cpu_ticks "$pid"); w1=$(date +%s.%N)
  s1=$(sys_busy_ticks); children_cpu_s; c1=$CHILD_CPU
  printf '%s\n' "$MEASURED" > "$WORK_DIR/$server-$bench.out"
  kill -0 "$pid" 2>/dev/null || die "$server: server died during the $bench run"
  R_CPU[$k]=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
    'BEGIN { printf "%.0f", 100 * (b - a) / hz / (w1 - w0) }')
  R_GEN[$k]=$(awk -v a="$c0" -v b="$c1" -v w0="$w0" -v w1="$w1" \
    'BEGIN { printf "%.0f", 100 * (b - a) / (w1 - w0) }')
  R_OTHER[$k]=$(awk -v s0="$s0" -v s1="$s1" -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
    -v srv="${R_CPU[$k]}" -v gen="${R_GEN[$k]}" \
    'BEGIN { o = 100 * (s1 - s0) / hz / (w1 - w0) - srv - gen; printf "%.0f", o < 0 ? 0 : o }')
  R_RSS[$k]=$(vm_hwm_mib "$pid")
  if (( R_OTHER[$k] > 20 )); then
    log "WARNING: other processes used ${R_OTHER[$k]}% of a core during $server $bench: the machine was not quiet, figures are skewed"
  fi
}

# check_wrk NAME LINE: abort on too many errors, or on a starved token pool.
check_wrk() {
  local name=$1 line=$2 req err sock starved
  req=$(field requests "$line"); err=$(field errors "$line"); sock=$(field socket_errors "$line")
  starved=$(field starved "$line")
  if (( ${starved:-0} > 0 )); then
    die "$name: $starved requests found their thread's refresh-token queue empty: raise POOL"
  fi
  if awk -v r="$req" -v e="$((err + sock))" -v m="$MAX_ERROR_RATE" 'BEGIN { exit !(r == 0 || e > r * m) }'; then
    log "$line"
    die "$name: $((err + sock)) of $req requests failed (errors $err, socket $sock; statuses $(field status_counts "$line")): more than $MAX_ERROR_RATE, a benchmark of errors is worthless"
  fi
}

# run_server SERVER PID ORIGIN AUTHORIZE TOKEN INTROSPECT ID SECRET INTROSPECT_ID:
# everything measured against one running server.
run_server() {
  local server=$1 pid=$2 origin=$3 authorize=$4 token=$5 introspect=$6
  local id=$7 secret=$8 iid=$9 line n
  local basic ibasic
  basic=$(printf '%s' "$id:$secret" | base64 -w0)
  ibasic=$(printf '%s' "$iid:$secret" | base64 -w0)
  local flowenv=(AUTHORIZE_URL="$authorize" TOKEN_URL="$token" ORIGIN="$origin"
    CLIENT_SECRET="$secret" REDIRECT_URI="$REDIRECT_URI" SCOPE="$SCOPE"
    BENCH_USERNAME="$USERNAME_" BENCH_PASSWORD="$PASSWORD_")

  # --- setup: refresh-token families, and an access token to introspect.
  log "$server: minting $POOL refresh tokens (code flows, $MINT_CONCURRENCY at a time)"
  # One file holds the pool: sso.lua reads it when its threads start and
  # rewrites it with the tokens left when wrk ends, so each run (warm-up,
  # measured run, a retry) continues from the previous one's tokens.
  local pool="$WORK_DIR/$server-pool.txt"
  line=$(env "${flowenv[@]}" CLIENT_ID="$id" COUNT="$POOL" CONCURRENCY="$MINT_CONCURRENCY" \
    REFRESH_OUT="$pool" node "$SCRIPT_DIR/codeflow.mjs" mint) || die "$server: minting failed"
  log "$server: first code flow: $line"
  TOKENS[$server]=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("access %s, ID %s" % (d["access_token"], d["id_token"]))' "$line")
  line=$(env "${flowenv[@]}" CLIENT_ID="$iid" COUNT=1 CONCURRENCY=1 REFRESH_OUT=/dev/null \
    ACCESS_OUT="$WORK_DIR/$server-access.txt" node "$SCRIPT_DIR/codeflow.mjs" mint) || die "$server: minting the access token failed"
  TOKENS[$server]+="; introspected: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$line")"
  local access
  access=$(<"$WORK_DIR/$server-access.txt")
  [[ $(curl -s -u "$iid:$secret" --data-urlencode "token=$access" "$introspect") == *'"active":true'* ]] ||
    die "$server: the access token does not introspect as active"

  SETUP_RSS[$server]="VmRSS $(vm_rss_mib "$pid") MiB, VmHWM $(vm_hwm_mib "$pid") MiB after start-up and minting"

  # --- refresh: warm-up, then the measured run on the warm-up's leftovers.
  reset_hwm "$pid"
  local wrkenv=(BENCH_MODE=refresh BENCH_BASIC="$basic" BENCH_THREADS="$THREADS")
  log "$server: refresh warm-up ${WARMUP}s"
  line=$(env "${wrkenv[@]}" BENCH_TOKENS="$pool" BENCH_TOKENS_OUT="$pool" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$LUA" "$token" | grep '^RESULT ') ||
    die "$server: no RESULT line from the refresh warm-up"
  check_wrk "$server refresh (warm-up)" "$line"
  n=$(wc -l <"$pool")
  (( n / THREADS > CONNECTIONS / THREADS )) ||
    die "$server: only $n refresh tokens left after the warm-up: raise POOL"
  R_CMD[$server:refresh]="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/sso/sso.lua $token (BENCH_MODE=refresh, $n token families)"
  log "$server: refresh, measuring ${DURATION}s with $n token families"
  measure "$server" refresh "$pid" env "${wrkenv[@]}" BENCH_TOKENS="$pool" BENCH_TOKENS_OUT="$pool" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "$token"
  printf '%s\n' "$MEASURED" >&2
  line=$(grep '^RESULT ' <<<"$MEASURED") || die "$server: no RESULT line from wrk"
  check_wrk "$server refresh" "$line"
  R_RATE[$server:refresh]=$(field rps "$line"); R_P50[$server:refresh]=$(field p50_ms "$line")
  R_P99[$server:refresh]=$(field p99_ms "$line")
  R_ERR[$server:refresh]="$(( $(field errors "$line") + $(field socket_errors "$line") )) / $(field requests "$line")"

  # --- introspection
  reset_hwm "$pid"
  wrkenv=(BENCH_MODE=introspect BENCH_BASIC="$ibasic" BENCH_TOKEN="$access")
  log "$server: introspection warm-up ${WARMUP}s"
  line=$(env "${wrkenv[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$LUA" "$introspect" |
    grep '^RESULT ') || die "$server: no RESULT line from the introspection warm-up"
  check_wrk "$server introspection (warm-up)" "$line"
  R_CMD[$server:introspect]="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/sso/sso.lua $introspect (BENCH_MODE=introspect)"
  log "$server: introspection, measuring ${DURATION}s"
  measure "$server" introspect "$pid" env "${wrkenv[@]}" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "$introspect"
  printf '%s\n' "$MEASURED" >&2
  line=$(grep '^RESULT ' <<<"$MEASURED") || die "$server: no RESULT line from wrk"
  check_wrk "$server introspection" "$line"
  R_RATE[$server:introspect]=$(field rps "$line"); R_P50[$server:introspect]=$(field p50_ms "$line")
  R_P99[$server:introspect]=$(field p99_ms "$line")
  R_ERR[$server:introspect]="$(( $(field errors "$line") + $(field socket_errors "$line") )) / $(field requests "$line")"

  # --- code flow
  reset_hwm "$pid"
  log "$server: code-flow warm-up ${FLOW_WARMUP}s"
  env "${flowenv[@]}" CLIENT_ID="$id" CONCURRENCY="$FLOW_CONCURRENCY" DURATION="$FLOW_WARMUP" \
    node "$SCRIPT_DIR/codeflow.mjs" load >/dev/null 2>"$WORK_DIR/$server-flow-warmup.err" ||
    { cat "$WORK_DIR/$server-flow-warmup.err" >&2; die "$server: code-flow warm-up failed"; }
  R_CMD[$server:flow]="node bench/sso/codeflow.mjs load (CONCURRENCY=$FLOW_CONCURRENCY DURATION=$FLOW_DURATION, $authorize)"
  log "$server: code flows, $FLOW_CONCURRENCY loops, measuring ${FLOW_DURATION}s"
  measure "$server" flow "$pid" env "${flowenv[@]}" CLIENT_ID="$id" CONCURRENCY="$FLOW_CONCURRENCY" \
    DURATION="$FLOW_DURATION" node "$SCRIPT_DIR/codeflow.mjs" load
  line=$(grep '^RESULT ' <<<"$MEASURED") || die "$server: no RESULT line from codeflow.mjs"
  log "$server: $line"
  local flows errs
  flows=$(field flows "$line"); errs=$(field errors "$line")
  if awk -v r="$((flows + errs))" -v e="$errs" -v m="$MAX_ERROR_RATE" 'BEGIN { exit !(r == 0 || e > r * m) }'; then
    cat "$WORK_DIR/$server-flow.err" >&2
    die "$server: $errs of $((flows + errs)) code flows failed: more than $MAX_ERROR_RATE"
  fi
  R_RATE[$server:flow]=$(field flows_per_s "$line"); R_P50[$server:flow]=$(field p50_ms "$line")
  R_P99[$server:flow]=$(field p99_ms "$line"); R_ERR[$server:flow]="$errs / $((flows + errs))"
  SERVERS+=("$server")
}

# ---------------------------------------------------------------- the hub
run_hub() {
  if [[ -z "${HUB_BIN:-}" ]]; then
    need cargo "the Rust toolchain, or give HUB_BIN"
    log "building the hub: cargo build --release -p hms-ach"
    (cd "$ROOT" && cargo build --release -p hms-ach) >&2
    HUB_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hms-ach"
  fi
  [[ -x "$HUB_BIN" ]] || die "HUB_BIN=$HUB_BIN is not an executable"
  HUB_BIN=$(cd "$(dirname "$HUB_BIN")" && pwd)/$(basename "$HUB_BIN")
  HUB_VERSION=$("$HUB_BIN" --version 2>/dev/null | head -n1 || true)
  # A prebuilt binary may predate the commit named in the report: give its age.
  HUB_BIN_INFO="hub binary: ${HUB_BIN#"$ROOT"/}, built $(date -u -r "$HUB_BIN" '+%Y-%m-%d %H:%M:%S UTC') (mtime)"
  LABEL[hub]="hub (${HUB_VERSION:-hms-ach})"

  local dir="$WORK_DIR/hub"
  mkdir -p "$dir"
  local db="sqlite://$dir/hub.db"
  local port=${HUB_PORT:-$(free_port)}
  local origin="http://127.0.0.1:$port"
  local logfile="$dir/serve.log"
  HMS_ACH__KEYS__MASTER_KEY=$(head -c32 /dev/urandom | base64)
  export HMS_ACH__KEYS__MASTER_KEY

  # --demo seeds the people (ana.diallo0 among them, with the demo password).
  # The sign-in limit per source address (auth.attempts_per_ip_per_minute,
  # 30) would stop a code-flow load that all comes from 127.0.0.1 within a
  # second: lifted for this process only. Nothing else is changed.
  (cd "$dir" && RUST_LOG=$HUB_LOG HMS_ACH__AUTH__ATTEMPTS_PER_IP_PER_MINUTE=1000000000 \
    exec "$HUB_BIN" serve --demo --database-url "$db" --bind "127.0.0.1:$port" --issuer "$origin") \
    >"$logfile" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  wait_http "$origin/readyz" "$pid" "$logfile" 120
  # $! is the hub itself: the subshell exec'd it.
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"$HUB_BIN serve "* ]] ||
    die "pid $pid runs '$(tr '\0' ' ' <"/proc/$pid/cmdline")', not the hub"
  local u
  for u in $USERNAME_; do
    grep -q " $u\$" "$logfile" || die "hub: --demo did not list the account $u (see $logfile)"
  done
  log "hub on port $port, pid $pid"

  log "hub: client create (first party, code + refresh, ES256 ID tokens, PKCE required)"
  (cd "$dir" && "$HUB_BIN" client create --database-url "$db" --name bench \
      --grant authorization_code --grant refresh_token \
      --scope openid --scope profile --scope email --scope offline_access \
      --redirect-uri "$REDIRECT_URI" --first-party --id-token-alg ES256 --json) \
    >"$dir/client.json" 2>"$dir/client.err" ||
    { cat "$dir/client.err" "$dir/client.json" >&2; die "hub: client create failed"; }
  local creds id secret
  creds=$(json_get "$dir/client.json" client_id client_secret | paste -sd' ') ||
    { cat "$dir/client.json" >&2; die "hub: client create did not print JSON with client_id and client_secret"; }
  read -r id secret <<<"$creds"

  local ep
  curl -s "$origin/.well-known/openid-configuration" >"$dir/discovery.json"
  ep=$(json_get "$dir/discovery.json" authorization_endpoint token_endpoint introspection_endpoint | paste -sd' ')
  # shellcheck disable=SC2086
  run_server hub "$pid" "$origin" $ep "$id" "$secret" "$id"
  stop_server "$pid"
}

# ---------------------------------------------------------------- oidc-provider
run_oidc_provider() {
  LABEL[oidc-provider]="oidc-provider $OIDC_VERSION (node $(node --version))"
  local port=${OIDC_PORT:-$(free_port)}
  local origin="http://127.0.0.1:$port"
  local secret logfile="$WORK_DIR/oidc-provider.log"
  secret=$(head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')   # 43 chars, like the hub's
  # Started directly (not through npm or a subshell) so that $! is node's pid.
  NODE_ENV=production PORT=$port BENCH_CLIENT_ID=bench BENCH_OPAQUE_CLIENT_ID=bench-opaque \
    BENCH_CLIENT_SECRET=$secret BENCH_REDIRECT_URI=$REDIRECT_URI \
    BENCH_USERNAME="$USERNAME_" BENCH_PASSWORD=$PASSWORD_ \
    BENCH_ARGON2_M=$ARGON2_M BENCH_ARGON2_T=$ARGON2_T BENCH_ARGON2_P=$ARGON2_P \
    OIDC_PROVIDER_DIR=$NODE_DIR \
    node "$SCRIPT_DIR/oidc-provider-server.mjs" >"$logfile" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  wait_http "$origin/.well-known/openid-configuration" "$pid" "$logfile" 30
  [[ $(readlink "/proc/$pid/exe") == *node* ]] || die "pid $pid is $(readlink "/proc/$pid/exe"), not node"
  log "oidc-provider $OIDC_VERSION on port $port, node pid $pid"
  grep -i warning "$logfile" | sed 's/^/[bench]   /' >&2 || true

  local ep
  curl -s "$origin/.well-known/openid-configuration" >"$WORK_DIR/oidc-discovery.json"
  ep=$(json_get "$WORK_DIR/oidc-discovery.json" authorization_endpoint token_endpoint introspection_endpoint | paste -sd' ')
  # Introspection uses the opaque-access-token client: oidc-provider does not
  # introspect JWT access tokens (see oidc-provider-server.mjs).
  # shellcheck disable=SC2086
  run_server oidc-provider "$pid" "$origin" $ep bench "$secret" bench-opaque
  stop_server "$pid"
}

# ---------------------------------------------------------------- run
OIDC_VERSION="" HUB_VERSION="" ARGON2_NPM="" HUB_BIN_INFO=""
install_node_packages
# One server at a time, so each has the machine to itself (bar the load generator).
if want hub; then run_hub; fi
if want oidc-provider; then run_oidc_provider; fi

# Raw argon2id rate, no server running.
wait_quiet $$
log "argon2id: $ARGON2_WORKERS workers, ${ARGON2_DURATION}s (node argon2 $ARGON2_NPM)"
ARGON2_LINE=$(WORKERS=$ARGON2_WORKERS DURATION=$ARGON2_DURATION ARGON2_M=$ARGON2_M ARGON2_T=$ARGON2_T \
  ARGON2_P=$ARGON2_P OIDC_PROVIDER_DIR=$NODE_DIR node "$SCRIPT_DIR/argon2-rate.mjs") || die "argon2-rate.mjs failed"
log "$ARGON2_LINE"
ARGON2_RATE=$(field per_s "$ARGON2_LINE")

# The ceiling the database sets on refresh: the hub's rotation statements alone,
# one thread, nothing else running (bench/sso/sqlite-ceiling.py).
log "SQLite rotation ceiling (python3 sqlite3, the hub's statements and migrations)"
CEILING_LINES=$(python3 "$SCRIPT_DIR/sqlite-ceiling.py" 3) || die "sqlite-ceiling.py failed"
log "$CEILING_LINES"

# ---------------------------------------------------------------- report
ratio() { # ratio BENCH: hub / oidc-provider throughput
  if [[ -n "${R_RATE[hub:$1]:-}" && -n "${R_RATE[oidc-provider:$1]:-}" ]]; then
    awk -v a="${R_RATE[hub:$1]}" -v b="${R_RATE[oidc-provider:$1]}" 'BEGIN { printf "%.2f", a / b }'
  else
    echo "n/a"
  fi
}
verdict() { # verdict OK-EXPRESSION: met / missed / n/a
  if [[ "$1" == n/a ]]; then echo "n/a (needs both servers)"; elif awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**missed**"; fi
}

table() { # table BENCH UNIT
  local b=$1 unit=$2 s
  echo "| server | $unit | p50 ms | p99 ms | errors | server CPU % | load generator CPU % | peak RSS MiB |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for s in "${SERVERS[@]}"; do
    printf '| %s | %.*f | %.2f | %.2f | %s | %s | %s | %s |\n' "${LABEL[$s]}" \
      "$([[ $b == flow ]] && echo 1 || echo 0)" "${R_RATE[$s:$b]}" "${R_P50[$s:$b]}" "${R_P99[$s:$b]}" \
      "${R_ERR[$s:$b]}" "${R_CPU[$s:$b]}" "${R_GEN[$s:$b]}" "${R_RSS[$s:$b]}"
  done
  echo
  echo "hub / oidc-provider throughput: **$(ratio "$b")**"
}

cmdline="${GIVEN}bash bench/sso/run.sh"
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n "$(git -C "$ROOT" status --porcelain -- . ':!bench/sso/last-run.md' 2>/dev/null | head -n1)" ]]; then
  commit="$commit (dirty tree)"
fi
r_refresh=$(ratio refresh); r_intro=$(ratio introspect)
times_() { if [[ $1 == n/a ]]; then echo "n/a"; else echo "$1×"; fi; }

{
  echo "# SSO benchmark: refresh, introspection, code flow"
  echo
  echo "## Refresh: \`POST token\` grant_type=refresh_token, rotated on every use"
  echo
  table refresh "req/s"
  echo
  echo "## Introspection: \`POST introspect\` of a valid access token"
  echo
  table introspect "req/s"
  echo
  echo "## Code flow: authorize → sign in (username + password, argon2id) → token"
  echo
  table flow "flows/s"
  echo
  echo "Latency here is per complete flow (5 HTTP exchanges), with $FLOW_CONCURRENCY flows in flight."
  echo
  echo "## argon2id on this machine (m=$ARGON2_M KiB, t=$ARGON2_T, p=$ARGON2_P)"
  echo
  echo "- node \`argon2\` $ARGON2_NPM, $ARGON2_WORKERS concurrent verifications: **$(printf '%.1f' "$ARGON2_RATE") verifications/s** (\`$ARGON2_LINE\`)"
  echo "- Rust (\`argon2\` crate, the hub's own hasher), same parameters: _to be added_"
  for s in "${SERVERS[@]}"; do
    echo "- ${LABEL[$s]}: $(printf '%.1f' "${R_RATE[$s:flow]}") flows/s = $(awk -v a="${R_RATE[$s:flow]}" -v b="$ARGON2_RATE" 'BEGIN { printf "%.0f", 100 * a / b }')% of node's raw verification rate (a flow needs at least one verification)"
  done
  echo
  echo "## The ceiling SQLite sets on refresh (\`python3 bench/sso/sqlite-ceiling.py 3\`)"
  echo
  echo "The hub's rotation write (conditional UPDATE … RETURNING + multi-row INSERT in one transaction, as src/oidc/refresh_writer.rs commits it), on a database made from its migrations, from one thread with nothing else running:"
  echo
  echo "| batch | rotations/s | µs per rotation |"
  echo "| ---: | ---: | ---: |"
  while read -r l; do
    echo "| $(field batch "$l") | $(field per_s "$l") | $(field us_per_rotation "$l") |"
  done <<<"$CEILING_LINES"
  echo
  echo "## Targets"
  echo
  echo "- refresh ≥ 5× oidc-provider: $(times_ "$r_refresh") — $(verdict "$([[ $r_refresh == n/a ]] && echo n/a || echo "$r_refresh >= 5")")"
  echo "- introspection ≥ 5× oidc-provider: $(times_ "$r_intro") — $(verdict "$([[ $r_intro == n/a ]] && echo n/a || echo "$r_intro >= 5")")"
  if [[ -n "${R_P99[hub:refresh]:-}" ]]; then
    echo "- hub refresh p99 < 10 ms at $CONNECTIONS connections: ${R_P99[hub:refresh]} ms — $(verdict "${R_P99[hub:refresh]} < 10")"
  fi
  echo
  echo "## How"
  echo
  echo "- command: \`$cmdline\`"
  for s in "${SERVERS[@]}"; do
    echo "- ${LABEL[$s]}: tokens from the first code flow: ${TOKENS[$s]}; memory: ${SETUP_RSS[$s]}"
    for b in refresh introspect flow; do
      echo "  - $b: \`${R_CMD[$s:$b]}\`; CPU meanwhile: other processes ${R_OTHER[$s:$b]}% of a core (>20 means a busy machine and skewed figures)$( (( R_TRIES[$s:$b] > 1 )) && echo "; measured ${R_TRIES[$s:$b]} times, the machine was busy, last run kept")"
    done
  done
  echo "- each server: $POOL code flows mint $POOL refresh-token families ($MINT_CONCURRENCY at a time); refresh: a ${WARMUP}s warm-up, then ${DURATION}s measured on the families the warm-up left (each wrk thread keeps a queue of the newest token of each of its families); introspection: ${WARMUP}s warm-up, ${DURATION}s measured; code flow: ${FLOW_WARMUP}s warm-up, ${FLOW_DURATION}s measured, every flow a new browser that signs in with the password"
  echo "- errors: failed requests (non-200, or a 200 without a new refresh_token / without \"active\":true; socket errors) or failed flows / total; the run aborts above $MAX_ERROR_RATE"
  echo "- server CPU %: the server process's user+system CPU over the measured run, 100 = one core; load generator: wrk or the node flow driver"
  if (( HWM_RESETS )); then
    echo "- peak RSS: VmHWM of the server process over that benchmark (warm-up and measured run; the high-water mark is reset before each benchmark through /proc/PID/clear_refs)"
  else
    echo "- peak RSS: VmHWM of the server process after that measured run, since the server started (it could not be reset here)"
  fi
  echo "- hub: SQLite file, RUST_LOG=$HUB_LOG, \`serve --demo\`, HMS_ACH__AUTH__ATTEMPTS_PER_IP_PER_MINUTE raised (all sign-ins come from 127.0.0.1); client from \`hms-ach client create … --first-party --id-token-alg ES256\`, client_secret_basic, PKCE S256"
  echo "- oidc-provider: one node process, NODE_ENV=production, storage in an unbounded in-process Map (its built-in dev adapter is a 1000-entry LRU that evicts live tokens under this load), ES256 JWT access tokens through resource indicators, except for the introspection client whose access tokens are opaque (oidc-provider cannot introspect JWTs), sign-in by argon2id (npm argon2 $ARGON2_NPM, same parameters), rotateRefreshToken: true; config in bench/sso/oidc-provider-server.mjs"
  echo "- machine: $(nproc) CPUs, $cpu_model, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr); node $(node --version)"
  echo "- wrk: $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'); repo: $commit (at report time)"
  if [[ -n "$HUB_BIN_INFO" ]]; then echo "- $HUB_BIN_INFO"; fi
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} > "$WORK_DIR/report.md"

mkdir -p "$(dirname "$BENCH_OUT")"
cp "$WORK_DIR/report.md" "$BENCH_OUT"
echo
cat "$BENCH_OUT"
log "report written to $BENCH_OUT"
