"""`mod_wsgi-httpd info [--json]` (also `python -m mod_wsgi_packages.httpd`): what was built.
`mod_wsgi-httpd cache dir|list|remove KEY|purge`: the build cache."""

import argparse
import json
import os
import sys

from . import BUILD_INFO, HTTPD, MODULES_DIR, PREFIX, SBOM


def gather():
    with open(BUILD_INFO, encoding="utf-8") as f:
        info = json.load(f)
    present = sorted(n[len("mod_"):-len(".so")] for n in os.listdir(MODULES_DIR)
                     if n.startswith("mod_") and n.endswith(".so"))
    info["prefix"] = PREFIX
    info["httpd"] = HTTPD
    info["sbom"] = SBOM
    # what is on disk now, which is what mod_wsgi-express can load
    info["mpms"] = [n[len("mpm_"):] for n in present if n.startswith("mpm_")]
    info["modules"] = [n for n in present if not n.startswith("mpm_")]
    return info


def render(info):
    profile = info.get("profile", "system")
    vendored = [n for n, c in info["components"].items() if c.get("linkage", "").startswith("static")]
    if profile == "portable":
        linked = f"portable: {', '.join(vendored)} built in (static, symbols hidden)"
    elif vendored:
        linked = f"system: the system's feature libraries where found; {', '.join(vendored)} built in (below)"
    else:
        linked = "system: every feature library (below) is the system's shared library"
    lines = [f"mod_wsgi-httpd {info['version']}",
             f"profile:   {linked}",
             f"prefix:    {info['prefix']}",
             f"httpd:     {info['httpd']}",
             f"compiler:  {info['compiler']}",
             f"platform:  {info['platform']}" + (f" (cross-compiled on {info['built_on']})" if info.get("built_on") else ""),
             f"SBOM:      {info['sbom']}",
             f"libraries: {', '.join(info.get('library_dirs') or []) or 'system default paths'} "
             f"(besides the package's own lib/)",
             "", "components:"]
    for name, c in info["components"].items():
        lines.append(f"  {name} {c['version']}  ({c['license']})")
        lines.append(f"    source:    {c['source']}  sha256 {c['sha256']}")
        if c.get("origin"):
            lines.append(f"    origin:    {c['origin']}")
        if c.get("linkage"):
            lines.append(f"    linkage:   {c['linkage']}")
        if c.get("patches"):
            lines.append(f"    patches:   {', '.join(c['patches'])}")
        lines.append(f"    configure: {' '.join(c['configure'])}")
    lines += ["", f"MPMs:      {', '.join(info['mpms'])}",
              f"modules:   {', '.join(info['modules'])}", "", "features:"]
    for name, f in info["features"].items():
        state = (f.get("source") or "built") if f["built"] else ("off" if f.get("mode") == "off" else "missing")
        lines.append(f"  {name:<14} {state:<8} {f['gives']} — {f['reason']}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mod_wsgi-httpd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    info = commands.add_parser("info", help="what was built (the default)")
    info.add_argument("--json", action="store_true", help="print the same as JSON")
    cache = commands.add_parser("cache", help="the build cache: dir, list, remove KEY, purge")
    cache.add_argument("action", choices=["dir", "list", "remove", "purge"])
    cache.add_argument("key", nargs="?", help="with remove: the key, or its first characters")
    cache.add_argument("--cache-dir", help="the cache (default: MOD_WSGI_HTTPD_CACHE, else the user cache dir)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # `mod_wsgi-httpd --json`
    args = parser.parse_args(argv)
    if args.command == "cache":
        from . import cachecmd
        if args.action == "remove" and not args.key:
            parser.error("cache remove needs a KEY (see: mod_wsgi-httpd cache list)")
        return cachecmd.run(args.action, args.cache_dir or cachecmd.default_dir(), args.key)
    info = gather()
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
