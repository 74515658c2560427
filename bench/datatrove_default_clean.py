"""The baseline of bench_corpus_speed: datatrove's own steps with their defaults, laid out as in datatrove's
examples (a filtering pipeline, then the four MinHash stages), run as one command like `corpus-clean`.

    python -m bench.datatrove_default_clean --input data/demo/jsonl --output /tmp/baseline --workers 2

Defaults throughout (spaCy word splitting, datatrove's thresholds, MinHash 5-grams 14x8), with two
settings a user must choose: keep English (`en`), and the fastText model file, given as a local path
(the default is a URL; this machine is offline) - the same lid.176 model corpus-clean uses.
Kept documents end up in `<output>/kept/*.jsonl.gz`, the documents each step dropped in `<output>/removed/<step>/`.
"""

from __future__ import annotations

import argparse

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

from corpus.filters import bundled_lid_model_path

STEPS = ("language", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.datatrove_default_clean",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="folder of JSONL(.gz) files")
    p.add_argument("--output", required=True, help="folder to write (created)")
    p.add_argument("--workers", type=int, default=2, help="parallel tasks per stage (default: 2)")
    args = p.parse_args(argv)
    out, tasks = args.output, args.workers

    def removed(step: str) -> JsonlWriter:
        return JsonlWriter(f"{out}/removed/{step}")

    language = LanguageFilter(languages=["en"], exclusion_writer=removed("language"))
    language.model.MODEL_URL = bundled_lid_model_path()  # a local file instead of the download URL
    filters = [
        language,
        GopherRepetitionFilter(exclusion_writer=removed("gopher_repetition")),
        GopherQualityFilter(exclusion_writer=removed("gopher_quality")),
        C4QualityFilter(exclusion_writer=removed("c4_quality")),
        FineWebQualityFilter(exclusion_writer=removed("fineweb_quality")),
    ]
    stages = [
        [JsonlReader(args.input), *filters, JsonlWriter(f"{out}/filtered")],
        [JsonlReader(f"{out}/filtered"), MinhashDedupSignature(f"{out}/minhash/sigs")],
        [MinhashDedupBuckets(f"{out}/minhash/sigs", f"{out}/minhash/buckets")],
        [MinhashDedupCluster(f"{out}/minhash/buckets", f"{out}/minhash/remove_ids")],
        [
            JsonlReader(f"{out}/filtered"),
            MinhashDedupFilter(f"{out}/minhash/remove_ids", exclusion_writer=removed("minhash")),
            JsonlWriter(f"{out}/kept"),
        ],
    ]
    n_tasks = [tasks, tasks, 14, 1, tasks]  # the buckets stage has one task per bucket (14 by default)
    for i, (pipeline, n) in enumerate(zip(stages, n_tasks)):
        LocalPipelineExecutor(pipeline, tasks=n, workers=min(tasks, n), logging_dir=f"{out}/logs/{i}").run()


if __name__ == "__main__":
    main()
