"""`mod_wsgi-apxs -q NAME ...`: answers the questions mod_wsgi's setup.py asks apxs, from
build/config_vars.mk, with every path relative to wherever this package is installed now.

Semantics follow httpd's own apxs: a name is looked up as given, then in lower case, then among
apxs's internal names; values are expanded recursively; several answers are joined by ';;'.
"""

import os
import re
import sys

from . import PREFIX

_REFERENCE = re.compile(r"\$(?:\(([^()]*)\)|\{([^{}]*)\})")
# httpd 2.4 built with shared MPMs records no MPM_NAME; mod_wsgi asks for it, so the answer is the
# MPM that mod_wsgi-express and conf/httpd.conf load unless told otherwise.
_DEFAULTS = {"MPM_NAME": "event"}
_INTERNAL = {"TARGET": "progname", "PREFIX": "prefix", "SBINDIR": "sbindir", "INCLUDEDIR": "includedir",
             "LIBEXECDIR": "libexecdir", "SYSCONFDIR": "sysconfdir"}


def config_vars(prefix=PREFIX):
    variables = {}
    with open(os.path.join(prefix, "build", "config_vars.mk"), encoding="utf-8") as f:
        for line in f:
            match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*(.*?)\s*$", line)
            if match:
                variables[match.group(1)] = match.group(2)
    # config_vars.mk computes its prefix with a GNU make function; here it is simply where we are.
    variables["prefix"] = prefix
    return variables


def expand(value, variables, depth=0):
    if depth > 20:
        raise ValueError(f"config_vars.mk refers to itself in circles near {value!r}")

    def replace(match):
        name = match.group(1) or match.group(2)
        return expand(variables.get(name, ""), variables, depth + 1)

    return _REFERENCE.sub(replace, value)


def query(name, variables):
    for candidate in (name, name.lower(), _INTERNAL.get(name.upper())):
        if candidate and candidate in variables:
            return expand(variables[candidate], variables)
    if name in _DEFAULTS:
        return _DEFAULTS[name]
    raise KeyError(name)


def main(argv=None, prefix=PREFIX):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] != "-q":
        print("usage: mod_wsgi-apxs -q NAME [NAME ...]", file=sys.stderr)
        return 1
    variables = config_vars(prefix)
    answers = []
    for name in argv[1:]:
        try:
            answers.append(query(name, variables))
        except KeyError:
            print(f"mod_wsgi-apxs: Invalid query string `{name}'", file=sys.stderr)
            return 1
    print(";;".join(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
