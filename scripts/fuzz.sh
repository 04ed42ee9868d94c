#!/usr/bin/env bash
# cargo fuzz on the SAML Response entry point (issue #4): each target runs for a bounded
# time and must end with no crash (panic), no hang and no leak.
#   bash scripts/fuzz.sh [SECONDS]       seconds per target (default: $HMS_FUZZ_SECONDS or 60)
#   HMS_FUZZ_TARGETS="saml_response"     only these targets
# cargo-fuzz needs nightly's -Z flags (the sanitizer); the stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1, so no second toolchain is installed. The corpus starts from the
# xmlsec1-signed fixtures in bench/saml/fixture and is kept in fuzz/corpus (ignored by git).
# A crash leaves its input in fuzz/artifacts/TARGET/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --dev TARGET fuzz/artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${HMS_FUZZ_SECONDS:-60}}"
targets="${HMS_FUZZ_TARGETS:-saml_response saml_response_xml}"
export RUSTC_BOOTSTRAP=1

# samael's xmlsec backend: the same system libraries as the main build.
bash scripts/system-deps.sh

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# Seed corpora: the signed Responses as XML (saml_response_xml) and as the base64 form
# value an IdP posts (saml_response).
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
done
for f in bench/saml/fixture/*.xml; do
  name=$(basename "$f" .xml)
  [ "$name" = idp-metadata ] && continue
  if [ -d fuzz/corpus/saml_response_xml ]; then
    cp "$f" "fuzz/corpus/saml_response_xml/seed-$name"
  fi
  if [ -d fuzz/corpus/saml_response ]; then
    base64 -w0 "$f" > "fuzz/corpus/saml_response/seed-$name"
  fi
done

# --dev: debug assertions and overflow checks on (a release build would hide them), and
# a much shorter build. -timeout: one input taking over 5 s is a hang. -rss_limit_mb:
# memory growth past 2 GiB is a failure. LeakSanitizer runs at exit (AddressSanitizer).
for t in $targets; do
  echo "==> cargo fuzz run $t for ${seconds}s"
  cargo fuzz run --dev --sanitizer address "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1
done
echo "==> fuzz: no crash, hang or leak in ${seconds}s per target ($targets)"
