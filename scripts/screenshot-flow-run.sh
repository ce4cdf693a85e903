#!/usr/bin/env bash
# Screenshots of a real cycle in the Prefect UI, for docs/:
#   docs/prefect-flow-run.png   the flow-run page (state, task graph) on its Artifacts tab
#   docs/prefect-artifacts.png  the gate artifact's own page (its table and MLflow links)
#
# Starts `ctpipe server` on a throwaway CTPIPE_HOME (unless CTPIPE_HOME is given), simulates the
# demand case, runs one cold-start cycle (validate, drift, train, gate, promote) against that
# server, and captures the pages with headless Chromium from Debian's packages (installed here
# if missing; needs root). Everything stays on 127.0.0.1 and telemetry is off.
#
# Environment: CTPIPE_HOME, PREFECT_PORT (4200), MLFLOW_PORT (5000), DAYS (22: the demand
# config trains on 21 labelled days and labels arrive a day late), OUT_DIR (docs).
set -euo pipefail

# A relative CTPIPE_HOME means relative to where the script was called from.
[ -n "${CTPIPE_HOME:-}" ] && CTPIPE_HOME=$(realpath -m "$CTPIPE_HOME")
cd "$(dirname "$0")/.."
REPO=$PWD
BIN="$REPO/.venv/bin"
PREFECT_PORT=${PREFECT_PORT:-4200}
MLFLOW_PORT=${MLFLOW_PORT:-5000}
DAYS=${DAYS:-22}
OUT_DIR=${OUT_DIR:-$REPO/docs}
READY_TIMEOUT=${READY_TIMEOUT:-240}

# shellcheck source=scripts/screenshot-common.sh
. "$REPO/scripts/screenshot-common.sh"
require_ctpipe_and_chromium

OWN_HOME=0
if [ -z "${CTPIPE_HOME:-}" ]; then
    CTPIPE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/ctpipe-screenshot.XXXXXX")
    OWN_HOME=1
fi
mkdir -p "$CTPIPE_HOME"
export CTPIPE_HOME
# Everything of this run lives in CTPIPE_HOME: an operator's stores must not get a demo model.
unset PREFECT_API_URL PREFECT_HOME MLFLOW_TRACKING_URI
export DO_NOT_TRACK=true PREFECT_SERVER_ANALYTICS_ENABLED=false MLFLOW_DISABLE_TELEMETRY=true \
    GX_ANALYTICS_ENABLED=false

SERVER_OUT="$CTPIPE_HOME/server.out"
SERVER_PID=""
OK=0

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        # Ctrl-C semantics: ctpipe server stops Prefect and MLflow, then exits.
        kill -INT "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        tail -n 1 "$SERVER_OUT"
    fi
    if [ "$OWN_HOME" = 1 ] && [ "$OK" = 1 ]; then
        rm -rf "$CTPIPE_HOME"
    elif [ "$OK" != 1 ]; then
        echo "state and logs kept in $CTPIPE_HOME" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

START=$SECONDS
echo "ctpipe server (state in $CTPIPE_HOME) ..."
"$BIN/ctpipe" server --prefect-port "$PREFECT_PORT" --mlflow-port "$MLFLOW_PORT" \
    >"$SERVER_OUT" 2>&1 &
SERVER_PID=$!
until grep -q "Ctrl-C stops both" "$SERVER_OUT" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$SERVER_OUT" >&2
        SERVER_PID=""
        exit 1
    fi
    if (( SECONDS - START > READY_TIMEOUT )); then
        echo "ctpipe server not ready after ${READY_TIMEOUT} s" >&2
        cat "$SERVER_OUT" >&2
        exit 1
    fi
    sleep 1
done
grep -E "ready in|UI:|API:" "$SERVER_OUT"

export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
export CTPIPE_MLFLOW_UI_URL="http://127.0.0.1:$MLFLOW_PORT"
"$BIN/ctpipe" simulate demand --days "$DAYS" --no-shift
# Cold start: no champion yet, so the cycle trains, gates and promotes.
"$BIN/ctpipe" cycle demand | grep -E '"(status|message)"'

"$BIN/python" scripts/screenshot_flow_run.py --prefect-url "http://127.0.0.1:$PREFECT_PORT" \
    --flow ctpipe-cycle --out-dir "$OUT_DIR"
OK=1
echo "done in $((SECONDS - START)) s"
