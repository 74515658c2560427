"""The demo corpus: real, messy web text nobody here wrote, from Debian's documentation packages.

    python -m corpus.demo_corpus --output data/demo                       # quick default: 11 packages
    python -m corpus.demo_corpus --size large --output data/demo-large    # 78 packages, 2.4 GB of HTML

For each package: `apt-get download`, `dpkg-deb -x`, then every HTML page is turned into text with the
cleaner's own `html_to_text` and written to `<out>/jsonl/<package>.jsonl.gz` (fields id, text, source,
url, lang). The default packages hold ~270 MB of HTML in ~9k pages: the Debian handbook in two dozen
languages (many pages left untranslated: real near-duplicates), the Python, Linux kernel and installer
documentation, and more. `--size large` adds 67 English documentation packages (20 prose-heavy manuals:
Debian policy, hardening and live-system manuals, SQLite, LibreOffice, GIMP, ...; then Python libraries'
Sphinx manuals, PostgreSQL, Apache, Git, CMake, GnuCash, Racket, Erlang, LilyPond, SageMath, ...):
2.4 GB of HTML in 63,551 pages, 342 MB of text. The package lists are fixed here; the versions used are
recorded per package in `<out>/manifest.json` (`parts[].version`). Done once: a package whose JSONL exists is
skipped, and a killed run resumes where it stopped (each JSONL is written under a temporary name and renamed
when complete).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cli_config
from cli_config import RECORD, at_least, opt, positive
from corpus import CorpusError
from corpus.readers import HTML_SUFFIXES, html_to_text
from safe_output import StageFailed, atomic_file, atomic_json, atomic_write, run_cli, use_output

DEFAULT_PACKAGES = [
    "debian-handbook",
    "python3.11-doc",
    "linux-doc-6.1",
    "installation-guide-amd64",
    "debian-reference-en",
    "debian-reference-de",
    "debian-reference-fr",
    "debian-reference-ja",
    "developers-reference",
    "maint-guide",
    "debian-faq",
]

# Prose-heavy manuals first (user guides, policy and administration handbooks, specifications: the pages the
# `full` preset keeps most of), then English reference documentation, smallest first (so an interrupted build has
# many packages done); chosen with `apt-cache show` / `dpkg-deb -c` for the amount of HTML in each
PROSE_PACKAGES = [
    "abs-guide",
    "debian-policy",
    "debian-history",
    "harden-doc",
    "exim4-doc-html",
    "postfix-doc",
    "buildbot-doc",
    "zsh-doc",
    "vim-doc",
    "bind9-doc",
    "nodejs-doc",
    "r-doc-html",
    "live-manual-html",
    "libreoffice-help-en-us",
    "debmake-doc",
    "sqlite3-doc",
    "debian-edu-doc-en",
    "kicad-doc-en",
    "grass-doc",
    "gimp-help-en",
]
LARGE_EXTRA_PACKAGES = PROSE_PACKAGES + [
    "python-pint-doc",
    "python-cryptography-doc",
    "python-flask-doc",
    "python-werkzeug-doc",
    "python-xarray-doc",
    "python-ruffus-doc",
    "python-vispy-doc",
    "sphinx-doc",
    "nova-doc",
    "python-skimage-doc",
    "python-ezdxf-doc",
    "git-doc",
    "neutron-doc",
    "gnucash-docs",
    "python-qutip-doc",
    "octave-doc",
    "maxima-doc",
    "python-openstackclient-doc",
    "glance-doc",
    "postgresql-doc-15",
    "python-ase-doc",
    "python-mdanalysis-doc",
    "libglib2.0-doc",
    "cinder-doc",
    "apache2-doc",
    "libgtk-3-doc",
    "python-fonttools-doc",
    "python-sfepy-doc",
    "cmake-doc",
    "python-pymatgen-doc",
    "python-silx-doc",
    "keystone-doc",
    "python-django-doc",
    "python-sqlalchemy-doc",
    "python-sklearn-doc",
    "python-dask-doc",
    "python-sympy-doc",
    "pacemaker-doc",
    "python-pandas-doc",
    "erlang-doc",
    "python-astropy-doc",
    "qtbase5-doc-html",
    "python-scipy-doc",
    "python-statsmodels-doc",
    "racket-doc",
    "lilypond-doc-html",
    "sagemath-doc",
]
SIZES = {"default": DEFAULT_PACKAGES, "large": LARGE_EXTRA_PACKAGES + DEFAULT_PACKAGES}
DEFAULT_OUT = {"default": Path("data/demo"), "large": Path("data/demo-large")}

# language from the path: debian-handbook/de-DE/..., installation-guide/amd64/fr/..., index.ja.html
_LANG_DIR_RE = re.compile(r"/([a-z]{2})(?:[-_][A-Za-z]{2})?/")
_LANG_SUFFIX_RE = re.compile(r"\.([a-z]{2}(?:[-_][a-z]{2})?)\.html?$", re.IGNORECASE)


COMMAND = "corpus demo-corpus"


def guess_language(relpath: str) -> str | None:
    match = _LANG_SUFFIX_RE.search(relpath) or _LANG_DIR_RE.search("/" + relpath)
    return match.group(1).lower() if match else None


def run(cmd: list[str], cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise CorpusError(f"{cmd[0]} not found: the demo corpus needs Debian's apt-get and dpkg-deb") from e
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise StageFailed(f"{' '.join(cmd)} failed (exit {result.returncode}): {last}")


def deb_version(deb_name: str) -> str:
    """The package version in a .deb file name (`name_version_arch.deb`, with `:` spelled `%3a`)."""
    return deb_name.split("_")[1].replace("%3a", ":")


def download(package: str, debs: Path) -> Path:
    found = sorted(debs.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    try:
        run(["apt-get", "download", package], cwd=debs)
    except StageFailed:
        run(["apt-get", "update", "-qq"])  # a fresh machine has no package lists yet
        run(["apt-get", "download", package], cwd=debs)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise CorpusError(f"apt-get download {package} produced no .deb in {debs}")
    return found[-1]


def extract(deb: Path, package: str, root: Path) -> Path:
    target = root / package
    done = target / ".extracted"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        run(["dpkg-deb", "-x", str(deb), str(target)])
        done.touch()
    return target


def _page(args: tuple[str, str, str]) -> tuple[str, int, str | None]:
    package, relpath, path = args
    html = Path(path).read_bytes()
    return relpath, len(html), html_to_text(html)


def convert(package: str, tree: Path, out_file: Path, workers: int, max_pages: int) -> dict:
    pages = sorted(
        p for p in tree.rglob("*") if p.suffix.lower() in HTML_SUFFIXES and p.is_file() and not p.is_symlink()
    )
    if max_pages > 0:
        pages = pages[:max_pages]
    jobs = [(package, p.relative_to(tree).as_posix(), str(p)) for p in pages]
    html_bytes = text_bytes = written = 0
    start = last = time.time()
    with (
        atomic_file(out_file) as tmp,
        gzip.open(tmp, "wt", encoding="utf-8") as f,
        ProcessPoolExecutor(workers) as pool,
    ):
        for i, (relpath, n_html, text) in enumerate(pool.map(_page, jobs, chunksize=8), start=1):
            html_bytes += n_html
            if text:
                record = {
                    "id": f"{package}/{relpath}",
                    "text": text,
                    "source": f"{package}/{relpath}",
                    "url": relpath,
                    "lang": guess_language(relpath),
                }
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                text_bytes += len(text.encode("utf-8"))
                written += 1
            now = time.time()
            if now - last > 5 or i == len(jobs):
                last = now
                rate = i / (now - start)
                print(
                    f"  {package}: {i:,}/{len(jobs):,} pages, {rate:,.1f} pages/s, {html_bytes / 1e6:,.1f} MB HTML, "
                    f"ETA {(len(jobs) - i) / rate:,.0f}s",
                    flush=True,
                )
    return {
        "package": package,
        "pages": len(jobs),
        "documents": written,
        "html_bytes": html_bytes,
        "text_bytes": text_bytes,
    }


def build(out: Path, packages: list[str], workers: int, max_pages: int, wait: bool = False, record: str = "") -> dict:
    """`record`: the resolved settings, written as `out/config.toml`."""
    with use_output(out, COMMAND, wait=wait):
        if record:
            atomic_write(out / RECORD, record)
        return _build(out, packages, workers, max_pages)


def _build(out: Path, packages: list[str], workers: int, max_pages: int) -> dict:
    manifest_path = out / "manifest.json"
    wanted = {"packages": packages, "max_pages": max_pages}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in wanted} == wanted:
            print(f"demo corpus already built: {out / 'jsonl'} ({manifest['documents']:,} documents); nothing to do")
            return manifest
    jsonl = out / "jsonl"
    jsonl.mkdir(parents=True, exist_ok=True)
    parts = []
    for package in packages:
        out_file = jsonl / f"{package}.jsonl.gz"
        summary_file = jsonl / f".{package}.json"
        if out_file.exists() and summary_file.exists():
            parts.append(json.loads(summary_file.read_text()))
            continue
        print(f"{package}: download and extract", flush=True)
        deb = download(package, out / "debs")
        tree = extract(deb, package, out / "extracted")
        summary = convert(package, tree, out_file, workers, max_pages)
        summary["deb"] = deb.name
        atomic_json(summary_file, summary)
        parts.append(summary)
    for part in parts:
        part["version"] = deb_version(part["deb"])
    manifest = {
        **wanted,
        "parts": parts,
        "documents": sum(p["documents"] for p in parts),
        "html_bytes": sum(p["html_bytes"] for p in parts),
        "text_bytes": sum(p["text_bytes"] for p in parts),
    }
    atomic_json(manifest_path, manifest)
    return manifest


@dataclass
class DemoConfig:
    size: str = opt(
        "default",
        f"which package list: default ({len(DEFAULT_PACKAGES)} packages, ~270 MB of HTML) or "
        f"large ({len(SIZES['large'])} packages, 2.4 GB of HTML)",
        choices=tuple(sorted(SIZES)),
    )
    output: str = opt(
        "",
        "folder to write (created, or empty) (default: data/demo, or data/demo-large with --size large)",
        metavar="DIR",
    )
    packages: list[str] = opt(
        [], "Debian documentation packages to use instead of --size's list (default: none)", metavar="PACKAGE"
    )
    workers: int = opt(
        os.cpu_count() or 2, "parallel HTML-to-text processes (default: the CPU count)", check=positive()
    )
    max_pages: int = opt(0, "pages per package (0: all); for a quick small build", check=at_least(0))


def build_parser() -> cli_config.OneLineParser:
    parser = cli_config.new_parser("python -m corpus.demo_corpus", __doc__)
    cli_config.add_arguments(parser, DemoConfig)
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another build is using --output, wait for it to end (default: stop at once)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli("demo corpus", lambda: build_and_report(args))


def build_and_report(args) -> int:
    cfg = cli_config.resolve(DemoConfig, args, CorpusError)
    cfg.output = cfg.output or str(DEFAULT_OUT[cfg.size])
    cfg.packages = cfg.packages or list(SIZES[cfg.size])
    start, out = time.time(), Path(cfg.output)
    manifest = build(
        out,
        cfg.packages,
        cfg.workers,
        cfg.max_pages,
        wait=args.wait,
        record=cli_config.record_text(cfg, "python -m corpus.demo_corpus"),
    )
    print(
        f"demo corpus: {out / 'jsonl'}: {manifest['documents']:,} documents from {len(manifest['parts'])} packages, "
        f"{manifest['html_bytes'] / 1e6:,.0f} MB HTML -> {manifest['text_bytes'] / 1e6:,.0f} MB text "
        f"({time.time() - start:,.0f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
