# Sourced by ci/ scripts: the Debian/Ubuntu packages they need, installed when run as root, named
# otherwise; and the virtualenv they work in.
# What building mod_wsgi-httpd with every feature needs (and ca-certificates: a trust store for pip).
BUILD_PACKAGES="build-essential make patch perl ca-certificates libssl-dev libnghttp2-dev zlib1g-dev libexpat1-dev libbrotli-dev"
# The portable wheel's build root: a compiler and the build tools (CMake for three of the vendored
# libraries), and none of the -dev packages above: everything is built from the recipes.
PORTABLE_BUILD_PACKAGES="build-essential make patch perl cmake ca-certificates python3 python3-venv"
# Debian's own Python, with venv and the headers mod_wsgi compiles against.
PYTHON_PACKAGES="python3 python3-venv python3-dev"
# Only the tests: a client and certificates for HTTPS, git for the checkout's own files, and a system
# apxs on PATH (the test that ours is the one mod_wsgi finds).
TEST_PACKAGES="openssl curl git apache2-dev"

# Whether $1 (a Python command) is Debian's, or missing: then PYTHON_PACKAGES are needed too.
uses_debian_python() {
    local exe
    exe=$(command -v "$1" 2>/dev/null) || return 0
    exe=$(readlink -f "$exe")
    case "$exe" in /usr/bin/*) return 0 ;; *) return 1 ;; esac
}

ensure_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing="" p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "installing Debian packages:$missing" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "missing Debian packages:$missing" >&2
        echo "install them first:  sudo apt-get install$missing" >&2
        return 1
    fi
}

# make_venv PYTHON DIR: a virtualenv with an up-to-date pip that still trusts what the system trusts.
# Debian's own pip uses the system's certificates; pip from the index does so through truststore
# only on Python 3.10 and newer, and on older Pythons (Debian 11's 3.9) falls back to its own
# bundle, which lacks an organisation's CA. There the virtualenv's pip.conf names the system bundle.
make_venv() {
    local python=$1 venv=$2 bundle
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' && [ ! -f "$venv/pip.conf" ]; then
        bundle=$("$venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/system-ca-bundle.py")
        [ -n "$bundle" ] && printf '[global]\ncert = %s\n' "$bundle" >"$venv/pip.conf"
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
}
