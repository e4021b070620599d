#!/usr/bin/env bash
# The portal's front end, from npm, built into the directory the notifier serves:
#
#   scripts/install-frontend.sh
#
# Installs the packages package-lock.json pins (every one, with its sha512 integrity; `npm ci`
# refuses a file whose hash differs) into node_modules/ and
# builds services/notifier/static/build/: portal.css (govuk-frontend compiled with Sass, with
# Arial instead of GDS Transport and no font files, plus static/src/_daybreak.scss) and
# govuk-frontend.min.js (its component JavaScript, served from the portal's own origin).
# Nothing is fetched at run time: once this has run, the portal is served offline.
# Idempotent: does nothing when the build is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")/.."

STATIC=services/notifier/static
BUILD=$STATIC/build
GOVUK=node_modules/govuk-frontend/dist/govuk

log() { printf 'install-frontend: %s\n' "$*"; }
die() { printf 'install-frontend: error: %s\n' "$*" >&2; exit 1; }

installed() {
  # every pinned package present at its pinned version
  node -e '
    const want = require("./package.json");
    const all = {...want.dependencies, ...want.devDependencies};
    for (const [name, version] of Object.entries(all)) {
      let have;
      try { have = require(`./node_modules/${name}/package.json`).version; } catch { process.exit(1); }
      if (have !== version) process.exit(1);
    }' 2>/dev/null
}

fresh() {
  [[ -f $BUILD/portal.css && -f $BUILD/govuk-frontend.min.js ]] || return 1
  [[ -z $(find package.json "$STATIC/src" -newer "$BUILD/portal.css" -print -quit) ]]
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  command -v apt-get >/dev/null || die "node and npm are missing: install Node.js 18 or later"
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get install -y -q nodejs npm || {
    "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install -y -q nodejs npm; }
fi

if installed; then
  log "node_modules up to date"
else
  log "installing $(node -p 'Object.entries({...require("./package.json").dependencies, ...require("./package.json").devDependencies}).map(([n, v]) => n + "@" + v).join(" ")')"
  # --ignore-scripts: nothing here needs an install script (sass runs as plain JavaScript)
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  installed || die "npm install did not give the pinned versions"
fi

if fresh; then
  log "$BUILD up to date"
  exit 0
fi
mkdir -p "$BUILD"
node_modules/.bin/sass --no-source-map --style=compressed --pkg-importer=node \
  --load-path="$STATIC/src" "$STATIC/src/portal.scss" "$BUILD/portal.css.tmp"
mv "$BUILD/portal.css.tmp" "$BUILD/portal.css"
cp "$GOVUK/govuk-frontend.min.js" "$BUILD/govuk-frontend.min.js"
if grep -q "GDS Transport" "$BUILD/portal.css"; then
  die "the built stylesheet names GDS Transport, which is for GOV.UK alone"
fi
log "built $BUILD (portal.css $(wc -c <"$BUILD/portal.css") bytes, govuk-frontend $(node -p 'require("./node_modules/govuk-frontend/package.json").version'))"
