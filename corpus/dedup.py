"""Deduplication stages: exact (content hash) then near-duplicate (MinHash LSH), both datatrove's own.

Each `*_stages` function returns a list of `Stage`s. Signatures are computed at the end of the pass that
writes the documents they describe (`exact_signature`, `minhash_signature`), not in a pass of their own.
A stage that reads data back uses `ArrowShardReader`, so
task `r` sees exactly the documents task `r` wrote in the previous pass, in the same order: datatrove's
dedup filters address documents by (task, index in task).

The MinHash settings default to datatrove's (5-grams, 14 bands x 8 rows); documents are split into
words with `RegexWordTokenizer` instead of spaCy, which is most of the speed-up (see `make bench`).
The MinHash index of every cleaned corpus is kept in `<out>/minhash_index/`, so a later batch can be
deduplicated against it (`corpus-clean --dedup-against DIR`) without re-processing the old corpus.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import (
    MinhashBuildIndex,
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
    SENTINEL,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import PUNCTUATION, TextNormConfig, ngrams, simplify_text

from cli_config import at_least, opt, positive
from corpus.arrow_writer import ArrowShardReader
from corpus.filters import named
from corpus.stage import Stage, measured
from corpus.text import RegexWordTokenizer

INDEX_NAME = "corpus"


@dataclass
class MinHashSettings:
    n_grams: int = opt(5, "words per shingle", check=positive())
    num_buckets: int = opt(
        14, "LSH bands: two documents are candidates when one band of signatures matches", check=positive()
    )
    hashes_per_bucket: int = opt(8, "hashes per band", check=positive())
    seed: int = opt(1, "seed of the hash functions", check=at_least(0))
    hash_precision: int = opt(64, "bits per hash", choices=(32, 64))


def minhash_config(settings: MinHashSettings) -> MinhashConfig:
    return MinhashConfig(
        n_grams=settings.n_grams,
        num_buckets=settings.num_buckets,
        hashes_per_bucket=settings.hashes_per_bucket,
        seed=settings.seed,
        hash_config=HashConfig(precision=settings.hash_precision),
    )


def exact_content(doc) -> str:
    """What counts as the same document: the text with surrounding whitespace stripped."""
    return doc.text.strip()


EXACT = ExactDedupConfig(content_getter=exact_content)


class InputOrderExactSignature(ExactDedupSignature):
    """Of identical documents keep the first in input order, whatever the number of tasks.

    datatrove keeps the copy of highest priority, then of lowest index *within its task*; tasks read
    the input in order (`corpus.splitting`), so a priority falling with the task rank makes that
    "lowest (task, index)": the input order."""

    def run(self, data, rank: int = 0, world_size: int = 1):
        if world_size >= 65535:
            raise ValueError(f"exact dedup orders at most 65534 tasks, not {world_size}")
        self.config = dataclasses.replace(self.config, document_priority=lambda doc: 65535 - rank)
        return super().run(data, rank, world_size)


class InputOrderMinhashCluster(MinhashDedupCluster):
    """datatrove's clustering, keeping the first document of each cluster in input order.

    datatrove keeps the root of its union-find (by size), which depends on the order the pairs are
    read in, and so on the number of tasks. Here the cluster ids it saves are read back and each
    cluster keeps its smallest (task, index): the first in input order (see `InputOrderExactSignature`).
    A cluster joined to a corpus in `--dedup-against` keeps nothing, as in datatrove."""

    def __init__(self, input_folder, output_folder, config: MinhashConfig):
        super().__init__(input_folder, output_folder, config=config, save_cluster_id=True)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        super().run(data, rank, world_size)  # writes <task>.remove and <task>.clusters
        members: dict[int, list[tuple[int, int]]] = {}
        for name in self.output_folder.list_files(glob_pattern="*.clusters"):
            task = int(name.removesuffix(".clusters"))
            with self.output_folder.open(name, "rb") as f:
                pairs = np.frombuffer(f.read(), dtype="<u4").reshape(-1, 2)
            for doc, cluster in pairs.tolist():
                members.setdefault(cluster, []).append((task, doc))
        remove: dict[int, list[int]] = {}
        for nodes in members.values():
            keep = None if any(task == SENTINEL for task, _ in nodes) else min(nodes)
            for task, doc in nodes:
                if (task, doc) != keep and task != SENTINEL:
                    remove.setdefault(task, []).append(doc)
        for name in self.output_folder.list_files(glob_pattern="*.remove"):
            self.output_folder.rm(name)
        for task, docs in remove.items():
            with self.output_folder.open(f"{task:06d}.remove", "wb") as f:
                f.write(np.array(sorted(docs), dtype="<u4").tobytes())


# datatrove's simplify_text replaces punctuation with spaces, then collapses whitespace runs (two passes over
# the text), and drops combining marks testing every character in Python; here one regex pass does the first
# two, and only non-ASCII characters are looked at for marks (all are non-ASCII): the same text, ~5x faster
_SPACE_OR_PUNCTUATION_RUN = re.compile("[\\s" + re.escape(PUNCTUATION) + "]+")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _without_marks(match: re.Match) -> str:
    return "".join(c for c in match.group() if unicodedata.category(c) != "Mn")


def simplify(text: str, config: TextNormConfig) -> str:
    """datatrove's `simplify_text(text, config)`, the same string (tested), faster."""
    if not (config.remove_punctuation and config.norm_whitespace):
        return simplify_text(text, config)
    text = simplify_text(
        text,
        dataclasses.replace(config, remove_punctuation=False, norm_whitespace=False, norm_unicode_diacritics=False),
    )  # case, numbers, names of days
    text = _SPACE_OR_PUNCTUATION_RUN.sub(" ", text).strip()
    if config.norm_unicode_diacritics and not text.isascii():
        text = _NON_ASCII_RUN.sub(_without_marks, unicodedata.normalize("NFD", text))
    return text.strip()


class FastMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash signatures, from the same shingles: only the text simplification is faster."""

    def get_shingles(self, text: str) -> np.ndarray:
        words = self.word_tokenizer.word_tokenize(simplify(text, self.config.norm_config))
        return np.fromiter(
            [self._hash_func(" ".join(x)) for x in ngrams(words, self.config.n_grams)], dtype=np.uint64
        ).reshape((-1, 1))


def exact_signature(work: Path):
    """Last step of the pass that writes the documents: the content hash of each (task, index)."""
    return InputOrderExactSignature(str(work / "sigs"), config=EXACT)


def minhash_signature(work: Path, settings: MinHashSettings):
    """Last step of the pass that writes the documents: the MinHash signature of each (task, index)."""
    return FastMinhashSignature(str(work / "sigs"), config=minhash_config(settings), language=RegexWordTokenizer())


def exact_dedup_stages(source: Path, work: Path, tasks: int, removed, sink, then: list = ()) -> list:
    """Drop documents whose text is identical to an earlier one (the first copy stays). The signatures come
    from `exact_signature` in the pass that wrote `source`; the steps `then` follow the writing of `sink`."""
    return [
        Stage("exact-find", [ExactFindDedups(str(work / "sigs"), str(work / "dups"), config=EXACT)], 1),
        Stage(
            "exact-filter",
            [
                ArrowShardReader(source),
                *measured(
                    [named(ExactDedupFilter(str(work / "dups"), config=EXACT, exclusion_writer=removed), "exact_dedup")]
                ),
                sink,
                *then,
            ],
            tasks,
        ),
    ]


class ClusterTaggedMinhashFilter(MinhashDedupFilter):
    """datatrove's filter with `minhash_cluster_id` in the metadata of clustered documents only (datatrove
    writes -1 on every other document of a task that removed something, none on the rest)."""

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in super().run(data, rank, world_size):
            if doc.metadata.get("minhash_cluster_id") == -1:
                del doc.metadata["minhash_cluster_id"]
            yield doc


def minhash_stages(
    source: Path,
    work: Path,
    tasks: int,
    settings: MinHashSettings,
    removed,
    sink,
    index_dir: Path,
    dedup_against: Path | None = None,
) -> list:
    """datatrove's MinHash stages after the signatures (`minhash_signature`, in the pass that wrote `source`):
    LSH buckets, clusters, filter; plus saving the index."""

    config = minhash_config(settings)
    buckets = MinhashDedupBuckets(
        str(work / "sigs"),
        str(work / "buckets"),
        config=config,
        index_folder=str(dedup_against) if dedup_against else None,
        only_dedup_in_index=False,
    )
    return [
        Stage("minhash-buckets", [buckets], config.num_buckets, reads_signatures=work / "sigs"),
        # cluster ids (saved by the clustering): report.html shows each removed near-duplicate beside the
        # kept document of its cluster
        Stage(
            "minhash-clusters",
            [InputOrderMinhashCluster(str(work / "buckets"), str(work / "remove_ids"), config=config)],
            1,
        ),
        Stage(
            "minhash-filter",
            [
                ArrowShardReader(source),
                *measured(
                    [
                        named(
                            ClusterTaggedMinhashFilter(
                                str(work / "remove_ids"), exclusion_writer=removed, load_cluster_ids=True
                            ),
                            "minhash",
                        )
                    ]
                ),
                sink,
            ],
            tasks,
        ),
        Stage(
            "minhash-index",
            [MinhashBuildIndex(str(work / "sigs"), str(index_dir), index_name=INDEX_NAME, config=config)],
            config.num_buckets,
            reads_signatures=work / "sigs",
        ),
    ]
