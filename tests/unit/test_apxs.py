"""mod_wsgi-apxs reads config_vars.mk like httpd's apxs does, relative to where it is installed."""

from mod_wsgi_packages.httpd import apxs

CONFIG_VARS = """\
exp_includedir = $(prefix)/include
includedir = ${exp_includedir}
CFLAGS = -O2 -fstack-protector-strong
EXTRA_INCLUDES = -I$(includedir) -I$(prefix)/include/apr-1
APR_CONFIG = $(prefix)/bin/apr-1-config
progname = httpd
MPM_NAME = event
prefix := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
"""


def test_answers_relative_to_the_installed_prefix(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "config_vars.mk").write_text(CONFIG_VARS)
    variables = apxs.config_vars(str(tmp_path))
    assert apxs.query("INCLUDEDIR", variables) == f"{tmp_path}/include"
    assert apxs.query("EXTRA_INCLUDES", variables) == f"-I{tmp_path}/include -I{tmp_path}/include/apr-1"
    assert apxs.query("APR_CONFIG", variables) == f"{tmp_path}/bin/apr-1-config"
    assert apxs.query("PROGNAME", variables) == "httpd"
    assert apxs.query("TARGET", variables) == "httpd"
    assert apxs.query("PREFIX", variables) == str(tmp_path)


def test_main_joins_answers_and_rejects_unknown_names(capsys, tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "config_vars.mk").write_text(CONFIG_VARS)
    assert apxs.main(["-q", "PROGNAME", "MPM_NAME"], prefix=str(tmp_path)) == 0
    assert capsys.readouterr().out.strip() == "httpd;;event"
    assert apxs.main(["-q", "NO_SUCH"], prefix=str(tmp_path)) == 1
    assert "Invalid query string" in capsys.readouterr().err
