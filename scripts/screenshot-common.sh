# Shared by the screenshot scripts (sourced, not run): what they need before they start.

# ctpipe installed in the repository's venv ($BIN), and Debian's chromium (installed here if
# missing; needs root).
require_ctpipe_and_chromium() {
    [ -x "$BIN/ctpipe" ] || { echo "no $BIN/ctpipe: run 'make install' first" >&2; exit 2; }
    if [ ! -x /usr/bin/chromium ]; then
        echo "installing Debian's chromium ..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
}
