"""docs/ldap.md's recipe, end to end: a WSGI app behind LDAP authentication through
mod_wsgi-express --include-file, against a real slapd (Debian's package) on 127.0.0.1."""

import os
import shutil
import signal
import subprocess

import pytest
import requests

from .conftest import ROOT, Express, free_port, run
from waiting import wait_until

pytestmark = pytest.mark.integration

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
BASE = "dc=example,dc=org"

DIRECTORY = f"""\
dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Admin
userPassword: alice-secret

dn: uid=bob,ou=people,{BASE}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
userPassword: bob-secret

dn: cn=staff,ou=groups,{BASE}
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,{BASE}
"""

WHO = '''\
def application(environ, start_response):
    body = ("user=%s" % environ.get("REMOTE_USER", "")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def slapd(shared_tmp):
    """A real OpenLDAP server on 127.0.0.1 with two people and one group."""
    assert os.path.exists(SLAPD), "slapd is missing: ci/test installs Debian's slapd package (TEST_PACKAGES)"
    home = shared_tmp / "slapd"
    (home / "db").mkdir(parents=True)
    conf = home / "slapd.conf"
    conf.write_text(f"""\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {home}/slapd.pid
database mdb
suffix "{BASE}"
rootdn "cn=admin,{BASE}"
rootpw admin-secret
directory {home}/db
""")
    (home / "base.ldif").write_text(DIRECTORY)
    run([SLAPADD, "-f", conf, "-l", home / "base.ldif"])
    port = free_port()
    url = f"ldap://127.0.0.1:{port}/"
    proc = subprocess.Popen([SLAPD, "-d", "0", "-f", conf, "-h", url], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def listening():
        import socket
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    wait_until(listening, f"slapd on port {port}", 30, alive=lambda: proc.poll() is None)
    yield port
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(20)


def test_ldap_authentication_in_front_of_a_wsgi_app(venv, shared_tmp, slapd):
    """The include file of docs/ldap.md, with the server's address filled in: no credentials and a
    wrong password are refused, a member of the staff group gets in (the app sees REMOTE_USER), a
    valid user outside the group does not."""
    recipe = (ROOT / "docs" / "ldap.md").read_text()
    include = recipe.split("```apache\n", 1)[1].split("```", 1)[0]
    include = include.replace("ldap.example.org:389", f"127.0.0.1:{slapd}")
    (shared_tmp / "ldap-auth.conf").write_text(include)
    (shared_tmp / "who.wsgi").write_text(WHO)
    with Express(venv, shared_tmp, shared_tmp / "who.wsgi", "--include-file", shared_tmp / "ldap-auth.conf",
                 env={"LDAP_BIND_PASSWORD": "admin-secret"}) as server:
        anonymous = server.get()
        assert anonymous.status_code == 401, anonymous.text
        assert 'Basic realm="Staff only"' in anonymous.headers.get("WWW-Authenticate", "")
        assert requests.get(server.url(), auth=("alice", "wrong"), timeout=10).status_code == 401
        member = requests.get(server.url(), auth=("alice", "alice-secret"), timeout=10)
        assert member.status_code == 200 and member.text == "user=alice", (member.status_code, member.text)
        outsider = requests.get(server.url(), auth=("bob", "bob-secret"), timeout=10)
        assert outsider.status_code == 401, (outsider.status_code, server.output()[-2000:])
