"""The teacher must never have seen a study's data: how much of it the teacher's training documents share.

`make teacher` trains the teacher on one part of the raw corpus and the studies clean their corpora from the
other part (`python -m train partition` splits it by near-duplicate cluster). Cleaning cuts lines, so two pages
apart as raw text can come out alike: each study measures, for every corpus it trains on and for the evaluation
sets, the documents with a near-duplicate among the teacher's, leaves those out of its token shards, and reports
what is left (it must be 0).
"""

from __future__ import annotations

from pathlib import Path

from eval import EvalError
from eval.data import glue_dir, wikitext_test
from eval.studies.report import markdown_table
from eval.studies.units import cached, locate, record_unit


def decontamination_files() -> list[Path]:
    """The evaluation texts every variant is decontaminated against."""
    return [wikitext_test(), *(glue_dir() / t / "dev.tsv" for t in ("SST-2", "CoLA", "RTE"))]


def evaluation_documents() -> list[tuple[str, str]]:
    """The evaluation sets as documents: WikiText test articles, and every GLUE dev row."""
    docs, title, lines = [], None, []
    for line in wikitext_test().read_text(encoding="utf-8").splitlines():
        if line.startswith(" = ") and not line.startswith(" = = "):
            if title is not None:
                docs.append((f"wikitext/{title}", "\n".join(lines)))
            title, lines = line.strip(" ="), []
        elif line.strip():
            lines.append(line)
    if title is not None:
        docs.append((f"wikitext/{title}", "\n".join(lines)))
    for task in ("SST-2", "CoLA", "RTE"):
        rows = (glue_dir() / task / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
        docs += [(f"glue/{task}/dev#{i + 2}", row) for i, row in enumerate(rows) if row.strip()]
    return docs


def teacher_overlap(
    teacher_data: str, cleaned: dict, out: Path, reuse_stale: bool = False
) -> tuple[dict | None, dict | None]:
    """(overlap, unit): per corpus a study trains on (`cleaned`: name -> (clean dir, its fingerprint)) and for the
    evaluation sets, the
    documents with a near-duplicate (word 5-gram Jaccard >= 0.8) or an identical copy among the teacher's training
    documents; None without --teacher-data."""
    if not teacher_data:
        return None, None
    from train.fingerprint import clean_fingerprint, files_fingerprint
    from train.split import cross_overlap
    from train.tokenize_shards import iter_documents

    teacher_dir = Path(teacher_data)
    if not (teacher_dir / "manifest.json").exists():
        raise EvalError(
            f"--teacher-data {teacher_dir}: not a clean-corpus directory (no manifest.json); pass the "
            f"corpus the teacher was trained on (make teacher: data/clean/teacher-full)"
        )
    key = {
        "teacher": clean_fingerprint(teacher_dir),
        "arms": {a: fp for a, (_, fp) in cleaned.items()},
        "eval": files_fingerprint(decontamination_files()),
    }
    path, fp, code = locate(out / "overlap", "teacher", key, "teacher overlap", suffix=".json", reuse_stale=reuse_stale)

    def docs(clean_dir: Path):
        return ((i, t) for ids, texts in iter_documents(clean_dir) for i, t in zip(ids, texts))

    def measure() -> dict:
        print(
            "measuring the overlap of the teacher's documents with the studied corpora and the evaluation sets",
            flush=True,
        )
        groups = {
            "teacher": docs(teacher_dir),
            **{a: docs(Path(clean_dir)) for a, (clean_dir, _) in cleaned.items()},
            "evaluation sets": iter(evaluation_documents()),
        }
        return cross_overlap(groups, "teacher")

    overlap = cached(path, measure)
    record_unit(path, fp, code)
    shared = {g: o["docs_with_reference_duplicate"] for g, o in overlap.items()}
    print(
        f"teacher overlap (documents with a near-duplicate among the teacher's): "
        f"{', '.join(f'{g} {n:,}' for g, n in shared.items())}" + ("" if any(shared.values()) else ": none"),
        flush=True,
    )
    return overlap, {"kind": "teacher overlap", "fingerprint": fp, "path": str(path), "code": code}


def overlap_lines(overlap: dict | None, teacher_data: str, variants: dict) -> list[str]:
    """The report's section. `variants`: each corpus the students train on -> its token shards' record
    (`left_out_for_teacher_overlap`: the documents found alike a teacher document and left out)."""
    if overlap is None:
        return [
            "## Teacher overlap",
            "",
            "Not measured: pass `--teacher-data DIR` (the clean corpus the teacher was trained on; `make ablation` "
            "and `make compare` do) to measure the overlap of the teacher's documents with every corpus the "
            "students train on.",
            "",
        ]

    def left_out(group: str) -> int | None:  # documents its token shards leave out; None: not trained on
        return variants[group].get("left_out_for_teacher_overlap", 0) if group in variants else None

    rows = [
        [
            f"`{g}`",
            f"{o['docs']:,}",
            f"{o['docs_with_reference_duplicate']:,}",
            f"{o['reference_docs_with_duplicate']:,}",
            "-" if left_out(g) is None else f"{left_out(g):,}",
            f"{o['docs_with_reference_duplicate'] - (left_out(g) or 0):,}",
            ", ".join(f"`{e}`" for e in o["examples"]) or "-",
        ]
        for g, o in overlap.items()
    ]
    found = sum(o["docs_with_reference_duplicate"] for o in overlap.values())
    read = sum(o["docs_with_reference_duplicate"] - (left_out(g) or 0) for g, o in overlap.items())
    if found == 0:
        verdict = "0 everywhere: the teacher never saw a document of the study (nor a near-duplicate of one)."
    elif read == 0:
        verdict = (
            f"{found:,} documents of the studied corpora, once cleaned, are near-duplicates of teacher documents "
            "(cleaning cuts lines, so pages apart as raw text can come out alike); each is left out of its corpus's "
            "token shards: **0 overlap in what the students read and are scored on**."
        )
    else:
        verdict = (
            f"**{read:,} documents overlap** in what the students read or are scored on: the teacher saw text of "
            "the study (an evaluation text among the teacher's documents: retrain the teacher on the teacher part, "
            "decontaminated: `make teacher`)."
        )
    return [
        "## Teacher overlap",
        "",
        f"Documents of each corpus the students train on (training and held out) and of the evaluation sets with "
        f"a near-duplicate (word 5-gram Jaccard >= 0.8) or an identical copy among the teacher's training documents "
        f"(`{teacher_data}`): {verdict}",
        "",
        markdown_table(
            [
                "documents of",
                "documents",
                "with a teacher near-duplicate",
                "teacher documents involved",
                "left out of the token shards",
                "overlap read by the students",
                "examples",
            ],
            rows,
        ),
        "",
    ]
