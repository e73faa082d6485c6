"""Issue 25: the standard configuration tree made movable, its LoadModule lines the build's own."""

import pytest

from build_httpd import conftree
from build_httpd.errors import BuildError

PREFIX = "/mod_wsgi.httpd"
# make install's httpd.conf, cut down: the MPMs, make install's module order (heartbeat before
# watchdog, proxy_balancer before proxy: they would not load), cgid wrapped as httpd writes it
INSTALLED = f"""ServerRoot "{PREFIX}"
Listen 8080
LoadModule mpm_event_module modules/mod_mpm_event.so
#LoadModule mpm_prefork_module modules/mod_mpm_prefork.so
#LoadModule heartbeat_module modules/mod_heartbeat.so
LoadModule alias_module modules/mod_alias.so
#LoadModule proxy_balancer_module modules/mod_proxy_balancer.so
<IfModule !mpm_prefork_module>
\t#LoadModule cgid_module modules/mod_cgid.so
</IfModule>
<IfModule mpm_prefork_module>
\t#LoadModule cgi_module modules/mod_cgi.so
</IfModule>
#LoadModule proxy_module modules/mod_proxy.so
#LoadModule watchdog_module modules/mod_watchdog.so
LoadModule dir_module modules/mod_dir.so
<IfModule unixd_module>
User daemon
</IfModule>
DocumentRoot "{PREFIX}/htdocs"
<Directory "{PREFIX}/htdocs">
</Directory>
ErrorLog "logs/error_log"
#CustomLog "logs/access_log" combined
# with "/", the value of ServerRoot is prepended -- so "logs/access_log"
Include conf/extra/httpd-ssl.conf
"""
SSL = f"""SSLSessionCache "shmcb:{PREFIX}/logs/ssl_scache(512000)"
SSLCertificateFile "{PREFIX}/conf/server.crt"
"""
MODULES = ["mpm_event", "mpm_prefork", "heartbeat", "alias", "proxy_balancer", "cgid", "cgi", "proxy", "watchdog",
           "dir"]


@pytest.fixture
def stage(tmp_path):
    (tmp_path / "modules").mkdir()
    for name in MODULES:
        (tmp_path / "modules" / f"mod_{name}.so").write_bytes(b"")
    for rel in ("conf/httpd.conf", "conf/original/httpd.conf"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(INSTALLED)
    (tmp_path / "conf" / "extra").mkdir()
    (tmp_path / "conf" / "extra" / "httpd-ssl.conf").write_text(SSL)
    return tmp_path


def test_paths_into_the_tree_name_the_server_root_and_the_log_directory_not_the_prefix(stage):
    conftree.make_movable(stage, PREFIX)
    conf = (stage / "conf" / "httpd.conf").read_text()
    assert 'ServerRoot "${SRVROOT}"' in conf
    assert 'DocumentRoot "${SRVROOT}/htdocs"\n<Directory "${SRVROOT}/htdocs">' in conf
    assert 'ErrorLog "${LOGDIR}/error_log"\n#CustomLog "${LOGDIR}/access_log" combined' in conf
    assert '# with "/", the value of ServerRoot is prepended -- so "logs/access_log"' in conf  # prose stays
    assert (stage / "conf" / "extra" / "httpd-ssl.conf").read_text() == (
        'SSLSessionCache "shmcb:${LOGDIR}/ssl_scache(512000)"\nSSLCertificateFile "${SRVROOT}/conf/server.crt"\n')
    assert (stage / "conf" / "original" / "httpd.conf").read_text() == conf
    conftree.check(stage, PREFIX)


def test_a_configuration_file_still_naming_the_prefix_stops_the_build(stage):
    with pytest.raises(BuildError) as e:
        conftree.check(stage, PREFIX)
    assert e.value.what == f"configuration files still name the build prefix {PREFIX}"
    assert e.value.why == "conf/extra/httpd-ssl.conf, conf/httpd.conf, conf/original/httpd.conf"
    assert e.value.fix == conftree.BUG


def test_the_mpms_then_what_others_need_first_then_make_installs_order(stage):
    order = conftree.order_load_modules(stage, ["watchdog", "proxy", "proxy_balancer", "session"])
    assert order == ["mpm_event", "mpm_prefork", "watchdog", "proxy", "proxy_balancer", "heartbeat", "alias",
                     "cgid", "cgi", "dir"]
    lines = (stage / "conf" / "httpd.conf").read_text().splitlines()
    assert lines[2:19] == [
        "LoadModule mpm_event_module modules/mod_mpm_event.so",
        "#LoadModule mpm_prefork_module modules/mod_mpm_prefork.so",
        "#LoadModule watchdog_module modules/mod_watchdog.so",
        "#LoadModule proxy_module modules/mod_proxy.so",
        "#LoadModule proxy_balancer_module modules/mod_proxy_balancer.so",
        "#LoadModule heartbeat_module modules/mod_heartbeat.so",
        "LoadModule alias_module modules/mod_alias.so",
        "<IfModule !mpm_prefork_module>",
        "\t#LoadModule cgid_module modules/mod_cgid.so",
        "</IfModule>",
        "<IfModule mpm_prefork_module>",
        "\t#LoadModule cgi_module modules/mod_cgi.so",
        "</IfModule>",
        "LoadModule dir_module modules/mod_dir.so",
        "<IfModule unixd_module>",
        "User daemon",
        "</IfModule>",
    ]
    assert (stage / "conf" / "original" / "httpd.conf").read_text() == (stage / "conf" / "httpd.conf").read_text()


@pytest.mark.parametrize("change, why", [
    (lambda s: (s / "modules" / "mod_proxy.so").unlink(),
     "lines without a module: ['proxy']; modules without a line: none; twice: none"),
    (lambda s: (s / "modules" / "mod_lua.so").write_bytes(b""),
     "lines without a module: none; modules without a line: ['lua']; twice: none"),
])
def test_a_line_without_its_module_or_a_module_without_its_line_stops_the_build(stage, change, why):
    change(stage)
    with pytest.raises(BuildError) as e:
        conftree.order_load_modules(stage, ["proxy"])
    assert e.value.what == "httpd.conf's LoadModule lines are not the modules the build produced"
    assert e.value.why == why
    assert e.value.fix == conftree.BUG


def test_a_module_listed_twice_stops_the_build(stage):
    conf = stage / "conf" / "httpd.conf"
    conf.write_text(conf.read_text().replace("LoadModule dir_module modules/mod_dir.so",
                                             "LoadModule dir_module modules/mod_dir.so\n#LoadModule dir_module "
                                             "modules/mod_dir.so"))
    with pytest.raises(BuildError) as e:
        conftree.order_load_modules(stage, [])
    assert e.value.why.endswith("twice: ['dir']")


def test_every_module_is_active_in_the_checked_configuration_but_the_other_mpms(stage):
    conftree.order_load_modules(stage, ["watchdog", "proxy"])
    active = [m.group(3) for m in map(conftree.LOAD_LINE.match, conftree.all_modules_config(stage).splitlines())
              if m and not m.group(1)]
    assert active == ["mpm_event", "watchdog", "proxy", "heartbeat", "alias", "proxy_balancer", "cgid", "cgi", "dir"]


def test_the_mpms_come_first_wherever_make_install_put_them_and_a_block_may_end_the_file(stage):
    conf = stage / "conf" / "httpd.conf"
    lines = conf.read_text().split("\n")
    mpms = lines[2:4]
    block_end = lines.index("LoadModule dir_module modules/mod_dir.so") + 1
    conf.write_text("\n".join(lines[:2] + lines[4:block_end] + mpms))  # the MPMs last, the file ends there
    order = conftree.order_load_modules(stage, ["watchdog"])
    assert order[:3] == ["mpm_event", "mpm_prefork", "watchdog"]
    assert conf.read_text().split("\n")[2:5] == mpms + ["#LoadModule watchdog_module modules/mod_watchdog.so"]


def test_an_httpd_conf_with_no_loadmodule_line_stops_the_build(stage):
    conf = stage / "conf" / "httpd.conf"
    conf.write_text("\n".join(line for line in INSTALLED.split("\n") if "LoadModule" not in line))
    with pytest.raises(BuildError) as e:
        conftree.order_load_modules(stage, [])
    assert (e.value.what, e.value.why, e.value.fix) == (
        "httpd.conf as installed has no LoadModule line", f"{conf} lists no module", conftree.BUG)
