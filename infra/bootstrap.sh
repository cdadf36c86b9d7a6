#!/bin/sh
# Installs weir's npm dependencies when package-lock.json changed since the last install, so the
# README's commands work on a fresh clone and cost nothing afterwards.
set -eu
cd "$(dirname "$0")/.."
stamp=node_modules/.weir-lockfile-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
node infra/patches/apply.mjs
