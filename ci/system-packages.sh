# Sourced by ci/ scripts: the Debian/Ubuntu packages they need, installed when run as root, named
# otherwise; and the virtualenv they work in.
_recipes_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../recipes" && pwd)"

# The Debian development packages of every feature library, as the recipes name them
# (`packages = { debian = "libssl-dev", … }`). Everywhere else ci/ asks `python3 -m
# build_httpd.recipes`; here sed reads them, since a fresh root has no Python yet (and Debian 11's
# has no TOML reader): tests/unit/test_recipes.py checks that both give the same list.
recipe_dev_packages() {
    sed -n 's/^packages = {.*debian = "\([^"]*\)".*/\1/p' "$_recipes_dir"/*.toml | sort -u | tr '\n' ' '
}
# Whether a recipe builds with CMake (the portable profile's build root needs it then).
recipe_build_tools() {
    grep -l '^configure_command = \["cmake"' "$_recipes_dir"/*.toml >/dev/null 2>&1 && echo cmake
}
# What building mod_wsgi-httpd with every feature needs (and ca-certificates: a trust store for pip).
BUILD_PACKAGES="build-essential make patch perl ca-certificates $(recipe_dev_packages)"
# The portable wheel's build root: a compiler and the build tools the recipes use, and none of the
# -dev packages above: everything is built from the recipes.
PORTABLE_BUILD_PACKAGES="build-essential make patch perl $(recipe_build_tools) ca-certificates python3 python3-venv"
# Debian's own Python, with venv and the headers mod_wsgi compiles against.
PYTHON_PACKAGES="python3 python3-venv python3-dev"
# httpd's own test suite (ci/httpd_suite.py): the Perl modules Debian's apache2 autopkgtest depends
# on (debian/tests/control of its source package), and the websocket client its proxy_websockets
# tests need (Debian's run skips them for want of it)
HTTPD_SUITE_PACKAGES="libwww-perl libnet-ssleay-perl libanyevent-perl libdatetime-perl libhtml-parser-perl
 libcrypt-ssleay-perl libhttp-dav-perl libprotocol-http2-perl libfcgi-perl perl-doc
 libanyevent-websocket-client-perl liburi-ws-perl"
# Only the tests: a client and certificates for HTTPS, git for the checkout's own files, and a system
# apxs on PATH (the test that ours is the one mod_wsgi finds), httpd's test suite, and an LDAP server
# for docs/ldap.md's recipe.
TEST_PACKAGES="openssl curl git apache2-dev $HTTPD_SUITE_PACKAGES slapd ldap-utils"

# Whether $1 (a Python command) is Debian's, or missing: then PYTHON_PACKAGES are needed too.
uses_debian_python() {
    local exe
    exe=$(command -v "$1" 2>/dev/null) || return 0
    exe=$(readlink -f "$exe")
    case "$exe" in /usr/bin/*) return 0 ;; *) return 1 ;; esac
}

# installed_packages PKG...: those of them that dpkg has installed, one a line (the one place that
# asks dpkg; ci/portable_wheel.py and bench/serve.py ask through it too).
installed_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local p
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] && echo "$p"
    done
    return 0
}

ensure_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing="" p installed
    installed=" $(installed_packages "$@" | tr '\n' ' ')"
    for p in "$@"; do
        case "$installed" in *" $p "*) ;; *) missing="$missing $p" ;; esac
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

# ensure_binfmt MACHINE: programs for MACHINE (e.g. aarch64) run on this one through qemu-user,
# registered with binfmt_misc (Debian's qemu-user-static registers with the F flag, so that they
# run inside chroots too).
ensure_binfmt() {
    local machine=$1
    [ "$machine" = "$(uname -m)" ] && return 0
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e "/proc/sys/fs/binfmt_misc/qemu-$machine" ] || update-binfmts --enable "qemu-$machine"
    grep -q '^enabled' "/proc/sys/fs/binfmt_misc/qemu-$machine" || update-binfmts --enable "qemu-$machine"
}
