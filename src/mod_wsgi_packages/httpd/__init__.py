"""A private Apache httpd built by mod_wsgi-httpd; this directory is its installation prefix
(bin/, lib/, modules/, include/, build/, conf/). mod_wsgi finds it through this package's __file__."""

import os

PREFIX = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.join(PREFIX, "bin")
HTTPD = os.path.join(BIN_DIR, "httpd")
MODULES_DIR = os.path.join(PREFIX, "modules")
BUILD_INFO = os.path.join(PREFIX, "build-info.json")
SBOM = os.path.join(PREFIX, "sbom.cdx.json")
