"""Run by ci/musl-python with the musl CPython it built: the modules the tests need import, and its
pip takes musllinux_1_2 wheels."""

import ctypes  # noqa: F401 - imported to prove it builds (the tests need it)
import hashlib  # noqa: F401
import ssl
import sysconfig
import zlib

from pip._internal.utils.compatibility_tags import get_supported

tags = [str(t) for t in get_supported()]
assert any("musllinux_1_2" in t for t in tags), tags[:5]
print("musl-python:", sysconfig.get_platform(), ssl.OPENSSL_VERSION, "zlib", zlib.ZLIB_RUNTIME_VERSION,
      "tags", [t for t in tags if "musllinux" in t][:1])
