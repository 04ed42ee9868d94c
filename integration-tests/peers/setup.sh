#!/usr/bin/env bash
# Installs the integration tests' third-party peers into target/peers/ (cached: runs
# pip again only when requirements.txt changes, npm only when package-lock.json does),
# and Debian's chromium for Playwright. Called by the tests themselves, possibly by
# several at once: one lock serialises the whole script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$root/target/peers"
exec 9>"$root/target/peers/.setup.lock"
flock 9

# --- Node peers (openid-client, playwright-core) into target/peers/node ------------
# ESM ignores NODE_PATH, so the .mjs scripts are copied next to node_modules and the
# tests run `node target/peers/node/<script>.mjs`. Checked on every run (cheap) and
# replaced by rename when changed, so a test starting node never reads half a file.
node_dir="$root/target/peers/node"
mkdir -p "$node_dir"
node_want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
node_stamp="$node_dir/.package-lock.sha256"
if [ ! -d "$node_dir/node_modules" ] || [ "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --silent --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$node_want" > "$node_stamp"
fi
for script in "$here"/*.mjs; do
  dest="$node_dir/$(basename "$script")"
  if ! cmp -s "$script" "$dest"; then
    cp "$script" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
  fi
done

# --- Debian chromium for Playwright (playwright-core never downloads a browser; the
# fonts make the screenshots legible without pulling in all of chromium's Recommends)
if [ ! -x /usr/bin/chromium ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=(sudo -n); fi
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq \
      --no-install-recommends chromium fonts-liberation; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
fi

# --- Python peers (Authlib, joserfc, pysaml2 + lxml, aiosmtpd) into target/peers/venv -------------------------
# One virtualenv per requirements file: requirements.txt → target/peers/venv,
# requirements-mfa.txt (soft-webauthn, PyOTP) → target/peers/venv-mfa.
python_env() {
  local venv="$1" reqs="$2"
  local stamp="$venv/.requirements.sha256"
  local want
  want=$(sha256sum "$reqs" | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
  echo "$want" > "$stamp"
}
python_env "$root/target/peers/venv" "$here/requirements.txt"
python_env "$root/target/peers/venv-mfa" "$here/requirements-mfa.txt"
python_env "$root/target/peers/venv-outbox" "$here/requirements-outbox.txt"
