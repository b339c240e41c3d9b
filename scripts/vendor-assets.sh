#!/usr/bin/env bash
# Install the pinned npm packages (package-lock.json) and copy the files the controller
# serves itself into controller/web/static/vendor: nothing is loaded from a CDN.
# Used by `make setup` (and so by `make demo`, `make test`, CI).
set -euo pipefail
cd "$(dirname "$0")/.."
out=controller/web/static/vendor
if [ -f "$out/.installed" ] && [ "$out/.installed" -nt package-lock.json ]; then
  exit 0
fi
npm ci --no-audit --no-fund --silent
mkdir -p "$out/swagger-ui"
cp node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,favicon-32x32.png} \
   "$out/swagger-ui/"
# The console: htmx and the two extensions it uses (server-sent events, JSON bodies).
mkdir -p "$out/htmx"
cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/dist/sse.min.js \
   node_modules/htmx-ext-json-enc/dist/json-enc.min.js "$out/htmx/"
touch "$out/.installed"
