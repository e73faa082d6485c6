#!/usr/bin/env python3
"""Write this release's sources archive: every tarball the portable profile needs that the sdist
does not carry (OpenSSL, nghttp2, brotli, zlib, expat, Lua, libxml2, libcurl, Jansson, OpenLDAP) and the toolchains' C
libraries (musl, recipes/toolchains/), so that the release's wheels can be built
again from the release's own artifacts when every upstream site and Debian revision has moved on.

Usage:  python3 ci/release_sources.py OUTDIR        (needs gpgv for the signature checks)

Each tarball is found by identity — file name, size and sha256 from its recipe — through the
engine's places (MOD_WSGI_HTTPD_SOURCES, the cache, the recipe's URLs, Debian's archive located
through its source indexes, never by a revision's name). Where upstream signs its releases and
Debian keeps the signature (.orig.tar.*.asc) and the key (debian/upstream/signing-key.asc in the
same source package), the signature must verify too. Then OUTDIR/mod_wsgi_httpd-VERSION-sources.tar
holds the tarballs and a SHA256SUMS; nothing is written unless every check passed.
Prints the archive's path last.
"""

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from build_httpd import debian, network  # noqa: E402
from build_httpd.errors import BuildError, format_error  # noqa: E402
from build_httpd.recipes import load_recipes, package_version  # noqa: E402
from build_httpd.toolchain import toolchain_recipes  # noqa: E402
from build_httpd.archive import debian_entries, listed_as  # noqa: E402
from build_httpd.sources import Places, obtain_sources  # noqa: E402
from build_httpd.transfer import PermanentError, TransferError, download  # noqa: E402


def fail(what: str) -> None:
    sys.exit(f"release-sources: {what}")


def signature(session, entries, source, work: Path, tarball: Path) -> str:
    """Verify upstream's signature where Debian carries it beside this exact tarball."""
    for archive, entry in entries:
        orig = listed_as(entry, source)
        if not orig:
            continue
        names = {name for name, _, _ in entry.files}
        if orig + ".asc" not in names:
            return "upstream publishes no signature that Debian carries"
        part = next(n for n in names if ".debian.tar." in n)
        try:
            asc = download(session, archive.file_url(entry.directory, orig + ".asc"), orig + ".asc", 1 << 20)
            packed = download(session, archive.file_url(entry.directory, part), part, 64 << 20)
        except (TransferError, PermanentError):
            continue  # another revision listing the same tarball may have them
        with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
            key = tar.extractfile("debian/upstream/signing-key.asc").read()
        keyring = work / f"{source.debian}-keys.gpg"
        dearmor = subprocess.run(["gpg", "--batch", "--quiet", "--dearmor"], input=key, capture_output=True)
        if dearmor.returncode != 0:
            fail(f"cannot read the upstream signing key of {source.filename}: {dearmor.stderr.decode()[:300]}")
        keyring.write_bytes(dearmor.stdout)
        (work / "sig.asc").write_bytes(asc)
        check = subprocess.run(["gpgv", "--keyring", str(keyring), str(work / "sig.asc"), str(tarball)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            fail(f"the upstream signature of {source.filename} does not verify:\n{check.stderr}")
        good = [line.split("gpgv: ")[-1].strip() for line in check.stderr.splitlines()
                if "using" in line or "Good signature" in line]
        return "upstream signature verified (" + "; ".join(good) + ")"
    if any(listed_as(e, source) for _, e in entries):
        return "NOT CHECKED: Debian lists upstream's signature, but it cannot be fetched here"
    return "no Debian source index lists it, so no signature was looked for"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1]).resolve()
    for tool in ("gpg", "gpgv"):
        if not shutil.which(tool):
            fail(f"{tool} is needed to check upstream signatures (apt-get install gnupg gpgv)")
    recipes = load_recipes(profile="portable")
    wanted = [r.source for r in recipes.values() if not r.source.in_sdists]
    wanted += [r.source for r in toolchain_recipes().values()]  # the C libraries a target builds with (musl)
    given = os.environ.get("MOD_WSGI_HTTPD_SOURCES")
    session = network.session()
    with tempfile.TemporaryDirectory(prefix="release-sources-") as tmp:
        work = Path(tmp)
        try:
            found = obtain_sources(wanted, work, Places(sources_dir=Path(given) if given else None))
        except BuildError as e:
            sys.stderr.write(format_error(e))
            sys.exit(1)
        entries, _, _ = debian_entries(session, debian.archives(), {s.debian for s in wanted if s.debian})
        sums = []
        for source in wanted:
            print(f"{source.filename}: verified; {signature(session, entries, source, work, found[source.filename])}")
            sums.append(f"{source.sha256}  {source.filename}\n")
        name = f"mod_wsgi_httpd-{package_version(recipes)}-sources.tar"
        out.mkdir(parents=True, exist_ok=True)
        partial = out / f".{name}.partial"
        # reproducible: fixed order, owner and times
        epoch = recipes["httpd"].source_date_epoch

        def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime, info.mode = epoch, 0o644
            return info

        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            data = "".join(sums).encode()
            info = normalise(tarfile.TarInfo("SHA256SUMS"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for source in wanted:
                tar.add(found[source.filename], arcname=source.filename, filter=normalise)
        os.replace(partial, out / name)
    print(out / name)


if __name__ == "__main__":
    main()
