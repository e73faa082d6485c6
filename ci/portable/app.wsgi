# The portable build's clash test: this app runs inside httpd next to mod_ssl (its OpenSSL built
# in, symbols hidden) and uses Python's own ssl, hashlib and zlib, which load the system's libssl,
# libcrypto and libz into the same process. It reports what it sees; ci/portable/check.py judges.
import hashlib
import json
import ssl
import threading
import zlib
from urllib.parse import parse_qs


def descend(n):
    """n levels of recursion, each through C (map and sum): what needs a real C stack in the
    thread that serves the request (musl's default, 128 KB, does not hold a few hundred)."""
    return 1 + sum(map(descend, [n - 1])) if n else 0


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/recurse":
        n = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["300"])[0])
        body = json.dumps({"depth": descend(n), "thread": threading.current_thread().name}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    data = b"mod_wsgi-httpd portable " * 100
    with open("/proc/self/maps") as maps:
        mapped = sorted({line.split()[-1] for line in maps
                         if any(k in line for k in ("libssl", "libcrypto", "libz.", "libnghttp2", "libbrotli",
                                                    "libexpat"))})
    context = ssl.create_default_context()
    body = json.dumps({
        "python_openssl": ssl.OPENSSL_VERSION,
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha3": hashlib.sha3_256(data).hexdigest(),
        "zlib_runtime": zlib.ZLIB_RUNTIME_VERSION,
        "zlib_roundtrip": zlib.decompress(zlib.compress(data)) == data,
        "tls_context": context.protocol.name,
        "ssl_protocol": environ.get("wsgi.url_scheme"),
        "mapped": mapped,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
