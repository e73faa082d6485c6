# Sourced by ci/ scripts: the Debian/Ubuntu packages a full build (every feature) and the tests need.
SYSTEM_PACKAGES="build-essential make patch perl libssl-dev libnghttp2-dev zlib1g-dev libexpat1-dev libbrotli-dev openssl curl apache2-dev"

ensure_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    missing=""
    for p in $SYSTEM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "missing Debian packages:$missing -- run: sudo apt-get install$missing" >&2
        return 1
    fi
}
