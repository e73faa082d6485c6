"""`mod_wsgi-httpd cache dir|list|remove|purge` on a cache the build engine wrote."""

import json

from build_httpd import cache
from mod_wsgi_packages.httpd import cachecmd, info


def filled(tmp_path):
    builds, sources = cache.open_cache(tmp_path / "cache")
    for n in "12":
        prefix = tmp_path / f"prefix{n}"
        (prefix / "bin").mkdir(parents=True)
        (prefix / "bin" / "httpd").write_bytes(b"x" * 1000)
        parts = {"features": json.dumps({"ssl": [n == "1", "f"], "http2": [True, "g"]})}
        cache.store(builds, n * 64, parts, prefix)
    (sources / "httpd-2.4.69.tar.gz").write_bytes(b"y" * 500)
    return tmp_path / "cache"


def lines(action, where, key=None):
    out = []
    code = cachecmd.run(action, str(where), key, out=out.append)
    return code, out


def test_dir_list_remove_purge(tmp_path):
    where = filled(tmp_path)
    assert lines("dir", where) == (0, [str(where)])
    code, out = lines("list", where)
    assert code == 0 and len(out) == 3
    assert out[0].startswith("2" * 16) or out[0].startswith("1" * 16)
    assert any("features: ssl,http2" in line for line in out) and any("features: http2" in line for line in out)
    assert out[-1].startswith("sources: 1 files")
    assert lines("remove", where, "1111") == (0, [f"removed {'1' * 16}"])
    assert [e[0] for e in cache.entries(where / "builds")] == ["2" * 64]
    code, out = lines("remove", where, "ffff")
    assert code == 1 and "no build" in out[0]
    assert lines("purge", where)[0] == 0
    assert not (where / "builds").exists() and not (where / "sources").exists()
    assert lines("list", where)[1] == [f"no builds in {where}"]


def test_the_command_line(tmp_path, capsys):
    where = filled(tmp_path)
    assert info.main(["cache", "list", "--cache-dir", str(where)]) == 0
    assert "features:" in capsys.readouterr().out
