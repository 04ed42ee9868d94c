#!/usr/bin/env bash
# SAML Response verification and TOTP verification: the hub (criterion, bench/saml/
# saml_totp.rs) beside python3-saml, pysaml2 and PyOTP (bench/saml/peers.py), on the
# same signed fixture and codes, in the same run. Writes bench/saml/last-run.md.
#
#   bash bench/saml/run.sh
#
# Knobs (environment): QUIET_TIMEOUT (s to wait for an idle machine first, 900; 0 = do
# not wait), REPEATS (timings per peer operation, 15), BENCH_OUT (report file).
# Needs cargo, python3 with venv, and Debian's xmlsec1 (pysaml2 runs it): installed by
# scripts/system-deps.sh, which this script calls. The peers go into
# target/bench/saml-venv (pip, from bench/saml/requirements.txt), never globally.
set -euo pipefail
cd "$(dirname "$0")/../.."
QUIET_TIMEOUT=${QUIET_TIMEOUT:-900}
REPEATS=${REPEATS:-15}
BENCH_OUT=${BENCH_OUT:-bench/saml/last-run.md}
log() { echo "==> $*" >&2; }

bash scripts/system-deps.sh
venv=target/bench/saml-venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum bench/saml/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the Python peers into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/saml/requirements.txt
  echo "$want" > "$stamp"
fi
log "building the bench"
cargo bench -p hms-ach --bench saml_totp --no-run 2>&1 | tail -n 2 >&2

# The machine has 2 cores: a compile elsewhere halves the figures. Wait until the rest
# of the machine uses under 15% of a core over 2 s.
busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat); sleep 2
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat)
  echo $(( 100 * (b - a) / (2 * $(getconf CLK_TCK)) ))
}
waited=0
while (( QUIET_TIMEOUT > 0 )); do
  busy=$(busy_pct)
  (( busy < 15 )) && break
  if (( waited >= QUIET_TIMEOUT )); then
    log "WARNING: still busy (${busy}% of a core) after ${QUIET_TIMEOUT}s: measuring anyway, do not quote these figures"
    break
  fi
  (( waited == 0 )) && log "machine busy (${busy}% of a core): waiting up to ${QUIET_TIMEOUT}s"
  sleep 8; waited=$((waited + 10))
done

started=$(date -u '+%Y-%m-%d %H:%M UTC')
log "hub: cargo bench -p hms-ach --bench saml_totp"
cargo bench -p hms-ach --bench saml_totp >&2
log "peers: $venv/bin/python bench/saml/peers.py $REPEATS"
peers=$("$venv/bin/python" bench/saml/peers.py "$REPEATS" 2>/dev/null)

# Criterion's median per iteration (ns) → µs.
median_us() {
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["median"]["point_estimate"]/1000, 2))' \
    "target/criterion/$1/new/estimates.json"
}
peer() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]][sys.argv[3]])' "$peers" "$1" "$2"; }

{
  echo "# bench/saml: SAML Response verification and TOTP"
  echo
  echo "- date: $started; commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo), $(uname -r)"
  echo "- command: \`bash bench/saml/run.sh\` (= \`cargo bench -p hms-ach --bench saml_totp\`, then \`$venv/bin/python bench/saml/peers.py $REPEATS\`)"
  echo "- figures: medians per operation (criterion's median estimate; the peers' median of $REPEATS timed loops)"
  echo
  echo "| operation | hub | python3-saml $(peer python3-saml version) | pysaml2 $(peer pysaml2 version) | PyOTP $(peer pyotp version) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  echo "| SAML Response decode + verify (RSA-SHA256, assertion signed) | $(median_us saml_response/decode_and_verify) µs | $(peer python3-saml decode_and_verify_us) µs | $(peer pysaml2 decode_and_verify_us) µs | |"
  echo "| … decode only | $(median_us saml_response/decode) µs | | | |"
  echo "| … verify only | $(median_us saml_response/verify) µs | | | |"
  echo "| TOTP verify, right code (±1 step) | $(median_us totp_verify/right_code) µs | | | $(peer pyotp right_code_us) µs |"
  echo "| TOTP verify, wrong code (±1 step) | $(median_us totp_verify/wrong_code) µs | | | $(peer pyotp wrong_code_us) µs |"
} > "$BENCH_OUT"
cat "$BENCH_OUT"
