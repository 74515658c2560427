"""Deduplication stages: exact (content hash) then near-duplicate (MinHash LSH), both datatrove's own.

Each function returns a list of `Stage`s. A stage that reads data back uses `ArrowShardReader`, so
task `r` sees exactly the documents task `r` wrote in the previous pass, in the same order: datatrove's
dedup filters address documents by (task, index in task).

The MinHash settings default to datatrove's (5-grams, 14 bands x 8 rows); documents are split into
words with `RegexWordTokenizer` instead of spaCy, which is most of the speed-up (see `make bench`).
The MinHash index of every cleaned corpus is kept in `<out>/minhash_index/`, so a later batch can be
deduplicated against it (`corpus-clean --dedup-against DIR`) without re-processing the old corpus.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import (
    MinhashBuildIndex,
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig

from corpus.arrow_writer import ArrowShardReader
from corpus.filters import named
from corpus.text import RegexWordTokenizer

INDEX_NAME = "corpus"


@dataclass
class MinHashSettings:
    n_grams: int = 5
    num_buckets: int = 14
    hashes_per_bucket: int = 8
    seed: int = 1
    hash_precision: int = 64


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


def exact_dedup_stages(source: Path, work: Path, tasks: int, removed, sink) -> list:
    """Drop documents whose text is identical to an earlier one (the first copy stays)."""
    from corpus.pipeline import Stage, measured

    config = ExactDedupConfig(content_getter=exact_content)
    return [
        Stage("exact-signatures", [ArrowShardReader(source), ExactDedupSignature(str(work / "sigs"), config=config)], tasks),
        Stage("exact-find", [ExactFindDedups(str(work / "sigs"), str(work / "dups"), config=config)], 1),
        Stage("exact-filter", [ArrowShardReader(source), *measured([named(ExactDedupFilter(str(work / "dups"), config=config, exclusion_writer=removed), "exact_dedup")]), sink], tasks),
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
    """datatrove's four MinHash stages: signatures, LSH buckets, clusters, filter; plus saving the index."""
    from corpus.pipeline import Stage, measured

    config = minhash_config(settings)
    tokenizer = RegexWordTokenizer()
    buckets = MinhashDedupBuckets(
        str(work / "sigs"),
        str(work / "buckets"),
        config=config,
        index_folder=str(dedup_against) if dedup_against else None,
        only_dedup_in_index=False,
    )
    return [
        Stage("minhash-signatures", [ArrowShardReader(source), MinhashDedupSignature(str(work / "sigs"), config=config, language=tokenizer)], tasks),
        Stage("minhash-buckets", [buckets], config.num_buckets),
        # cluster ids: report.html shows each removed near-duplicate beside the kept document of its cluster
        Stage("minhash-clusters", [MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config,
                                                       save_cluster_id=True)], 1),
        Stage("minhash-filter", [ArrowShardReader(source), *measured([named(ClusterTaggedMinhashFilter(str(work / "remove_ids"), exclusion_writer=removed, load_cluster_ids=True), "minhash")]), sink], tasks),
        Stage("minhash-index", [MinhashBuildIndex(str(work / "sigs"), str(index_dir), index_name=INDEX_NAME, config=config)], config.num_buckets),
    ]
