"""Run by ci/musl-python with the musl CPython it built: the modules the tests need import, and its
pip takes musllinux_1_2 wheels."""

import ctypes
import hashlib
import ssl
import sysconfig
import zlib

from pip._internal.utils.compatibility_tags import get_supported

# the modules the tests need were built: ctypes (libffi), hashlib and ssl (OpenSSL), zlib
assert ctypes.sizeof(ctypes.c_void_p) == 8 and hashlib.sha256(b"").hexdigest().startswith("e3b0c442")
tags = [str(t) for t in get_supported()]
assert any("musllinux_1_2" in t for t in tags), tags[:5]
print("musl-python:", sysconfig.get_platform(), ssl.OPENSSL_VERSION, "zlib", zlib.ZLIB_RUNTIME_VERSION,
      "tags", [t for t in tags if "musllinux" in t][:1])
