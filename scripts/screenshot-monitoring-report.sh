#!/usr/bin/env bash
# Screenshot of a real monitoring report, for docs/: docs/monitoring-report.png
#
# Runs `ctpipe demo fraud --scenario bad-promotion` (a promotion, then the automatic rollback)
# on a throwaway CTPIPE_HOME, unless CTPIPE_HOME is given and already holds a fraud replay;
# writes the replay's monitoring report (the same page `ctpipe monitor` writes) and renders it
# in headless Chromium from Debian's packages (installed here if missing; needs root).
# Nothing leaves the machine: the page loads nothing, the browser resolves no host names.
#
# Environment: CTPIPE_HOME, DAYS (60), SCENARIO (bad-promotion), OUT (docs/monitoring-report.png),
# WIDTH (1400), HEIGHT (1800).
set -euo pipefail

[ -n "${CTPIPE_HOME:-}" ] && CTPIPE_HOME=$(realpath -m "$CTPIPE_HOME")
[ -n "${OUT:-}" ] && OUT=$(realpath -m "$OUT")
cd "$(dirname "$0")/.."
REPO=$PWD
BIN="$REPO/.venv/bin"
DAYS=${DAYS:-60}
SCENARIO=${SCENARIO:-bad-promotion}
OUT=${OUT:-$REPO/docs/monitoring-report.png}
WIDTH=${WIDTH:-1400}
HEIGHT=${HEIGHT:-1800}

# shellcheck source=scripts/screenshot-common.sh
. "$REPO/scripts/screenshot-common.sh"
require_ctpipe_and_chromium

OWN_HOME=0
if [ -z "${CTPIPE_HOME:-}" ]; then
    CTPIPE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/ctpipe-report.XXXXXX")
    OWN_HOME=1
    # The demo's rows belong in this home's SQLite file, not in an operator's database.
    unset CTPIPE_DATABASE_URL
fi
mkdir -p "$CTPIPE_HOME"
export CTPIPE_HOME
unset PREFECT_API_URL PREFECT_HOME MLFLOW_TRACKING_URI
export DO_NOT_TRACK=true PREFECT_SERVER_ANALYTICS_ENABLED=false MLFLOW_DISABLE_TELEMETRY=true \
    GX_ANALYTICS_ENABLED=false

OK=0
cleanup() {
    if [ "$OWN_HOME" = 1 ] && [ "$OK" = 1 ]; then
        rm -rf "$CTPIPE_HOME"
    elif [ "$OK" != 1 ]; then
        echo "state and logs kept in $CTPIPE_HOME" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

START=$SECONDS
if [ -d "$CTPIPE_HOME/backtests/fraud" ]; then
    echo "reusing the fraud replay in $CTPIPE_HOME"
else
    SCENARIO_ARGS=()
    # Captured first: `grep -q` closing the pipe early would fail it under pipefail.
    DEMO_HELP=$("$BIN/ctpipe" demo --help)
    if grep -q -- "--scenario" <<<"$DEMO_HELP"; then
        SCENARIO_ARGS=(--scenario "$SCENARIO")
    else
        echo "this ctpipe demo has no --scenario: running the default one" >&2
    fi
    "$BIN/ctpipe" demo fraud --days "$DAYS" "${SCENARIO_ARGS[@]}" \
        --json "$CTPIPE_HOME/demo.json" --png "$CTPIPE_HOME/demo-timeline.png"
fi

PAGE=$("$BIN/python" - <<'EOF'
from ctpipe import settings

settings.configure_environment()
from ctpipe.db import open_database
from ctpipe.monitoring_report import write_monitoring_report
from ctpipe.workspace import open_workspace

page, _ = write_monitoring_report(open_workspace("fraud", backtest=True), open_database())
print(page)
EOF
)
echo "report: $PAGE"

mkdir -p "$(dirname "$OUT")"
PROFILE=$(mktemp -d "${TMPDIR:-/tmp}/ctpipe-chromium.XXXXXX")
TMP_OUT="$PROFILE/shot.png"
# The page is self-contained; the resolver rule makes any attempt to fetch something fail.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --no-default-browser-check --no-pings \
    --no-proxy-server --force-device-scale-factor=1 \
    --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$PROFILE" \
    --window-size="$WIDTH,$HEIGHT" --screenshot="$TMP_OUT" "file://$PAGE" 2>/dev/null
mv "$TMP_OUT" "$OUT"
rm -rf "$PROFILE"
OK=1
echo "screenshot: $OUT (done in $((SECONDS - START)) s)"
