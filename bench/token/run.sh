#!/usr/bin/env bash
# Token-endpoint benchmark: POST client_credentials token requests at
#   (a) the hub (HMS-ACH, POST /oauth2/token) and
#   (b) node's oidc-provider (POST /token), configured to sign an ES256 JWT
#       access token per request like the hub does,
# one after the other in the same run, with the same wrk load, and print a
# Markdown table (also written to bench/token/last-run.md).
#
# Usage:
#   bash bench/token/run.sh                      # both servers
#   BENCH_ONLY=oidc-provider bash bench/token/run.sh
#   BENCH_ONLY=hub HUB_BIN=target/release/hms-ach bash bench/token/run.sh
#
# Knobs (environment):
#   BENCH_ONLY          hub | oidc-provider | (empty: both)
#   DURATION            measured seconds per server                 [20]
#   WARMUP              warm-up seconds per server (not measured)   [5]
#   THREADS/CONNECTIONS wrk -t / -c                                 [2 / 32]
#   HUB_BIN             hub binary; when unset: cargo build --release -p hms-ach
#   HUB_PORT, OIDC_PORT ports on 127.0.0.1                          [free ports]
#   HUB_LOG             RUST_LOG for the hub while measured         [warn]
#   OIDC_PROVIDER_DIR   npm install folder  [${TMPDIR:-/tmp}/hms-bench-oidc-provider]
#   OIDC_PROVIDER_VERSION  npm version range                        [9, falls back to 8]
#   BENCH_OUT           report file                     [bench/token/last-run.md]
#   BENCH_KEEP=1        keep the hub's temporary folder (database, logs)
#   MAX_ERROR_RATE      failing fraction that aborts the run        [0.001]
set -euo pipefail

# The knobs given by the caller, for the report's "command" line.
GIVEN=""
for v in BENCH_ONLY DURATION WARMUP THREADS CONNECTIONS HUB_BIN HUB_LOG OIDC_PROVIDER_VERSION MAX_ERROR_RATE; do
  if [[ -n "${!v+x}" ]]; then GIVEN+="$v=${!v} "; fi
done

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

BENCH_ONLY=${BENCH_ONLY:-}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
HUB_LOG=${HUB_LOG:-warn}
OIDC_PROVIDER_DIR=${OIDC_PROVIDER_DIR:-${TMPDIR:-/tmp}/hms-bench-oidc-provider}
OIDC_PROVIDER_VERSION=${OIDC_PROVIDER_VERSION:-9}
BENCH_OUT=${BENCH_OUT:-$SCRIPT_DIR/last-run.md}
MAX_ERROR_RATE=${MAX_ERROR_RATE:-0.001}
SCOPE=users.read
LUA="$SCRIPT_DIR/token.lua"

case "$BENCH_ONLY" in
  ""|hub|oidc-provider) ;;
  *) echo "run.sh: BENCH_ONLY must be 'hub', 'oidc-provider' or empty, not '$BENCH_ONLY'" >&2; exit 2 ;;
esac
want() { [[ -z "$BENCH_ONLY" || "$BENCH_ONLY" == "$1" ]]; }

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
SERVER_PIDS=()
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hms-bench-token.XXXXXX")
cleanup() {
  local rc=$?
  local pid
  for pid in "${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
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
if want oidc-provider; then
  need node "Node.js 20+ with npm"
  need npm "Node.js 20+ with npm"
fi

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

# check_token NAME URL BASIC: one request by curl; it must be 200 with an
# access_token that is a JWT. Prints "ALG TYP" of the JWT header.
check_token() {
  local name=$1 url=$2 basic=$3 body code
  body="$WORK_DIR/$name-first-token.json"
  code=$(curl -s -o "$body" -w '%{http_code}' -X POST "$url" \
    -H "Authorization: Basic $basic" \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    --data "grant_type=client_credentials&scope=$SCOPE" || true)
  if [[ "$code" != 200 ]]; then
    cat "$body" >&2 2>/dev/null || true; echo >&2
    die "$name: first token request answered HTTP $code, not 200"
  fi
  python3 - "$body" <<'PY' || die "$name: the token response is not a JSON body with a JWT access_token"
import base64, json, sys
tok = json.load(open(sys.argv[1]))
parts = tok["access_token"].split(".")
assert len(parts) == 3, "access_token is not a JWS compact serialization"
def b64(s):
    return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
h, c = b64(parts[0]), b64(parts[1])
print(f'{h.get("alg")} {h.get("typ", "-")}')
print(f"  header={json.dumps(h)} claims={json.dumps(c)}", file=sys.stderr)
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
# children_cpu_s: user+system seconds of this shell's reaped children (wrk...).
# `times` must run in this shell, not in a $(...) subshell: hence the file.
# Call it as: children_cpu_s; c0=$CHILD_CPU
children_cpu_s() {
  times >"$WORK_DIR/times"
  CHILD_CPU=$(awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
    print t }' "$WORK_DIR/times")
}

vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- results
declare -A R_OTHER R_WRKCPU R_RPS R_P50 R_P99 R_RSS R_ERR R_CPU R_ALG R_CMD
ORDER=()

# bench NAME URL BASIC PID LOGFILE: warm-up, measured run, collect figures.
bench() {
  local name=$1 url=$2 basic=$3 pid=$4 logfile=$5
  local alg out line t0 t1 w0 w1
  alg=$(check_token "$name" "$url" "$basic")
  log "$name: first token OK, JWT alg/typ: $alg"

  export BENCH_BASIC=$basic BENCH_SCOPE=$SCOPE
  log "$name: warm-up ${WARMUP}s"
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$LUA" "$url")
  line=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; die "$name: no RESULT line from the warm-up"; }
  check_errors "$name (warm-up)" "$line" "$logfile"

  local cmd="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/token/token.lua $url"
  log "$name: measuring: $cmd"
  local s0 s1 c0 c1
  s0=$(sys_busy_ticks); children_cpu_s; c0=$CHILD_CPU
  t0=$(cpu_ticks "$pid"); w0=$(date +%s.%N)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "$url")
  t1=$(cpu_ticks "$pid"); w1=$(date +%s.%N)
  s1=$(sys_busy_ticks); children_cpu_s; c1=$CHILD_CPU
  printf '%s\n' "$out" > "$WORK_DIR/$name-wrk.txt"
  printf '%s\n' "$out" >&2
  line=$(grep '^RESULT ' <<<"$out") || die "$name: no RESULT line from wrk"
  check_errors "$name" "$line" "$logfile"
  kill -0 "$pid" 2>/dev/null || die "$name: server died during the run"

  ORDER+=("$name")
  R_CMD[$name]=$cmd
  R_ALG[$name]=$alg
  R_RPS[$name]=$(field rps "$line")
  R_P50[$name]=$(field p50_ms "$line")
  R_P99[$name]=$(field p99_ms "$line")
  R_ERR[$name]="$(( $(field errors "$line") + $(field socket_errors "$line") )) / $(field requests "$line")"
  R_RSS[$name]=$(awk -v k="$(vm_hwm_kib "$pid")" 'BEGIN { printf "%.1f", k / 1024 }')
  R_CPU[$name]=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
    'BEGIN { printf "%.0f", 100 * (b - a) / hz / (w1 - w0) }')
  # CPU of wrk (this shell's reaped children) and of everything else.
  R_WRKCPU[$name]=$(awk -v a="$c0" -v b="$c1" -v w0="$w0" -v w1="$w1" \
    'BEGIN { printf "%.0f", 100 * (b - a) / (w1 - w0) }')
  R_OTHER[$name]=$(awk -v s0="$s0" -v s1="$s1" -v hz="$CLK_TCK" -v w0="$w0" -v w1="$w1" \
    -v srv="${R_CPU[$name]}" -v wrk="${R_WRKCPU[$name]}" \
    'BEGIN { o = 100 * (s1 - s0) / hz / (w1 - w0) - srv - wrk; printf "%.0f", o < 0 ? 0 : o }')
  if (( R_OTHER[$name] > 20 )); then
    log "WARNING: other processes used ${R_OTHER[$name]}% of a core during the $name run: the machine was not quiet, figures are skewed"
  fi
}

field() { grep -o "\b$1=[^ ]*" <<<"$2" | head -n1 | cut -d= -f2; }

check_errors() {
  local name=$1 line=$2 logfile=$3 req err sock
  req=$(field requests "$line"); err=$(field errors "$line"); sock=$(field socket_errors "$line")
  if awk -v r="$req" -v e="$((err + sock))" -v m="$MAX_ERROR_RATE" 'BEGIN { exit !(r == 0 || e > r * m) }'; then
    log "$line"
    tail -n 30 "$logfile" >&2 || true
    die "$name: $((err + sock)) of $req requests failed (non-200 $err, socket $sock; statuses $(field status_counts "$line")): more than $MAX_ERROR_RATE, a benchmark of errors is worthless"
  fi
}

# ---------------------------------------------------------------- (b) oidc-provider
run_oidc_provider() {
  local pkg="$OIDC_PROVIDER_DIR/node_modules/oidc-provider/package.json"
  if [[ ! -f "$pkg" ]]; then
    log "installing oidc-provider@$OIDC_PROVIDER_VERSION into $OIDC_PROVIDER_DIR"
    mkdir -p "$OIDC_PROVIDER_DIR"
    [[ -f "$OIDC_PROVIDER_DIR/package.json" ]] ||
      printf '{ "name": "hms-bench-oidc-provider", "private": true, "type": "module" }\n' > "$OIDC_PROVIDER_DIR/package.json"
    (cd "$OIDC_PROVIDER_DIR" &&
      { npm install --no-audit --no-fund --loglevel=error "oidc-provider@$OIDC_PROVIDER_VERSION" ||
        { log "oidc-provider@$OIDC_PROVIDER_VERSION did not install; trying 8"; npm install --no-audit --no-fund --loglevel=error "oidc-provider@8"; }; }) >&2
  fi
  [[ -f "$pkg" ]] || die "oidc-provider is not installed in $OIDC_PROVIDER_DIR"
  OIDC_VERSION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pkg")

  local port=${OIDC_PORT:-$(free_port)}
  local secret logfile="$WORK_DIR/oidc-provider.log"
  secret=$(head -c32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')   # 43 chars
  # Started directly (not through npm or a subshell) so that $! is node's pid.
  NODE_ENV=production PORT=$port BENCH_CLIENT_ID=bench BENCH_CLIENT_SECRET=$secret \
    OIDC_PROVIDER_DIR=$OIDC_PROVIDER_DIR \
    node "$SCRIPT_DIR/oidc-provider-server.mjs" >"$logfile" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/.well-known/openid-configuration" "$pid" "$logfile" 30
  [[ $(readlink "/proc/$pid/exe") == *node* ]] || die "pid $pid is $(readlink "/proc/$pid/exe"), not node"
  log "oidc-provider $OIDC_VERSION on port $port, node pid $pid"
  grep -i warning "$logfile" | sed 's/^/[bench]   /' >&2 || true

  bench oidc-provider "http://127.0.0.1:$port/token" \
    "$(printf '%s' "bench:$secret" | base64 -w0)" "$pid" "$logfile"
  kill -TERM "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- (a) hub
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
  HUB_VERSION=${HUB_VERSION:-hms-ach}

  local dir="$WORK_DIR/hub"
  mkdir -p "$dir"
  local db="sqlite://$dir/bench.db"
  local port=${HUB_PORT:-$(free_port)}
  local logfile="$dir/serve.log"
  HMS_ACH__KEYS__MASTER_KEY=$(head -c32 /dev/urandom | base64)
  export HMS_ACH__KEYS__MASTER_KEY

  log "hub: migrate"
  (cd "$dir" && "$HUB_BIN" migrate --database-url "$db") >"$dir/migrate.log" 2>&1 ||
    { cat "$dir/migrate.log" >&2; die "hub: migrate failed"; }

  log "hub: client create"
  (cd "$dir" && "$HUB_BIN" client create --database-url "$db" --name bench \
      --grant client_credentials --scope "$SCOPE" --role auditor --json) \
    >"$dir/client.json" 2>"$dir/client.err" ||
    { cat "$dir/client.err" "$dir/client.json" >&2; die "hub: client create failed"; }
  local creds id secret
  creds=$(python3 - "$dir/client.json" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
try:
    doc = json.loads(text)
except ValueError:
    # tolerate log lines around the JSON document
    doc = next(json.loads(l) for l in reversed(text.splitlines()) if l.strip().startswith("{"))
print(doc["client_id"], doc["client_secret"])
PY
) || { cat "$dir/client.json" >&2; die "hub: client create did not print JSON with client_id and client_secret"; }
  read -r id secret <<<"$creds"

  (cd "$dir" && RUST_LOG=$HUB_LOG exec "$HUB_BIN" serve --database-url "$db" \
      --bind "127.0.0.1:$port" --issuer "http://127.0.0.1:$port") >"$logfile" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/readyz" "$pid" "$logfile" 60
  # $! is the hub itself: the subshell exec'd it (argv[0] is $HUB_BIN).
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"$HUB_BIN serve "* ]] ||
    die "pid $pid runs '$(tr '\0' ' ' <"/proc/$pid/cmdline")', not the hub"
  log "hub on port $port, pid $pid"

  bench hub "http://127.0.0.1:$port/oauth2/token" \
    "$(printf '%s' "$id:$secret" | base64 -w0)" "$pid" "$logfile"
  kill -TERM "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- run
OIDC_VERSION="" HUB_VERSION=""
# Run one server at a time so each has the machine to itself (bar wrk).
if want hub; then run_hub; fi
if want oidc-provider; then run_oidc_provider; fi

# ---------------------------------------------------------------- report
label() {
  case $1 in
    hub) printf 'hub (%s)' "$HUB_VERSION" ;;
    oidc-provider) printf 'oidc-provider %s (node %s)' "$OIDC_VERSION" "$(node --version)" ;;
  esac
}

cmdline="${GIVEN}bash bench/token/run.sh"

ratio="n/a (needs both servers)"
if [[ -n "${R_RPS[hub]:-}" && -n "${R_RPS[oidc-provider]:-}" ]]; then
  ratio=$(awk -v a="${R_RPS[hub]}" -v b="${R_RPS[oidc-provider]}" 'BEGIN { printf "%.2f", a / b }')
fi

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
# Dirty: changes other than this report itself.
if [[ -n "$(git -C "$ROOT" status --porcelain -- . ':!bench/token/last-run.md' 2>/dev/null | head -n1)" ]]; then
  commit="$commit (dirty tree)"
fi

{
  echo "# Token endpoint benchmark: client_credentials"
  echo
  echo "| server | req/s | p50 ms | p99 ms | peak RSS MiB | errors | server CPU % | token |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for name in "${ORDER[@]}"; do
    printf '| %s | %.0f | %.2f | %.2f | %s | %s | %s | %s |\n' "$(label "$name")" \
      "${R_RPS[$name]}" "${R_P50[$name]}" "${R_P99[$name]}" "${R_RSS[$name]}" \
      "${R_ERR[$name]}" "${R_CPU[$name]}" "${R_ALG[$name]}"
  done
  echo
  echo "hub / oidc-provider throughput: **$ratio**"
  echo
  echo "- command: \`$cmdline\`"
  for name in "${ORDER[@]}"; do
    echo "- load ($name): \`${R_CMD[$name]}\` after a ${WARMUP}s warm-up with the same script; CPU meanwhile: wrk ${R_WRKCPU[$name]}%, other processes ${R_OTHER[$name]}% (of one core; >20 means a busy machine and skewed figures)"
  done
  echo "- request: \`POST\` form \`grant_type=client_credentials&scope=$SCOPE\`, client_secret_basic; the token column is the JWT header (alg, typ) of each server's first token, checked before the load"
  echo "- errors: non-200 responses plus socket errors / total requests (the run aborts above $MAX_ERROR_RATE)"
  echo "- peak RSS: VmHWM of the server process after its run (warm-up included); server CPU %: the server's user+system CPU time over the measured run, 100 = one core"
  echo "- servers run one at a time, each alone with wrk on the same machine; hub logging: RUST_LOG=$HUB_LOG; oidc-provider: NODE_ENV=production, one node process"
  echo "- machine: $(nproc) CPUs, $cpu_model, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
  echo "- wrk: $(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }'); repo: $commit"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} > "$WORK_DIR/report.md"

mkdir -p "$(dirname "$BENCH_OUT")"
cp "$WORK_DIR/report.md" "$BENCH_OUT"
echo
cat "$BENCH_OUT"
log "report written to $BENCH_OUT"
