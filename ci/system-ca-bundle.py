"""Print the system's CA bundle, the file Debian's own pip trusts, or nothing if there is none:
OpenSSL's default file, else the bundle in its default directory (Debian 11 has only the
directory), else the usual places."""
import os
import ssl

paths = ssl.get_default_verify_paths()
candidates = [paths.cafile, paths.capath and os.path.join(paths.capath, "ca-certificates.crt"),
              "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]
print(next((c for c in candidates if c and os.path.isfile(c)), ""))
