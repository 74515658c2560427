"""The demo corpus builder: its package lists, and a real build of one small Debian package."""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from corpus.demo_corpus import DEFAULT_PACKAGES, SIZES, deb_version


def test_the_large_list_holds_the_default_and_fifty_packages_once_each():
    large = SIZES["large"]
    assert len(large) >= 50 and len(set(large)) == len(large)
    assert set(DEFAULT_PACKAGES) <= set(large)
    assert SIZES["default"] == DEFAULT_PACKAGES


def test_deb_version_reads_the_file_name():
    assert deb_version("python3.11-doc_3.11.2-6+deb12u6_all.deb") == "3.11.2-6+deb12u6"
    assert deb_version("foo_1%3a2.0-1_all.deb") == "1:2.0-1"


@pytest.mark.skipif(not shutil.which("apt-get") or not shutil.which("dpkg-deb"),
                    reason="needs Debian's apt-get and dpkg-deb")
def test_a_build_records_each_package_version_as_dpkg_reads_it(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "corpus.demo_corpus", "--output", str(out), "--packages", "maint-guide",
           "--max-pages", "2", "--workers", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    [part] = manifest["parts"]
    deb = next((out / "debs").glob("maint-guide_*.deb"))
    assert part["version"] == subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                                             text=True).stdout.strip()
    rows = [json.loads(line) for line in gzip.open(out / "jsonl" / "maint-guide.jsonl.gz", "rt")]
    assert len(rows) == part["documents"] > 0
