"""Tokenizing speed: `train tokenize` vs a plain single-process loop of `tokenizers` vs datatrove's DocumentTokenizer,
on the same clean corpus with the same tokenizer; MB of text per second (whole process, start-up included) and
peak RSS. Then `train tokenize` on the corpus repeated 1x and 4x: memory stays flat as the corpus grows.

Our command runs with `--split id-hash`, as the two baselines make no held-out split; the cluster split's own
cost is measured beside it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_train import clean_corpus
from bench.memory import peak_rss
from bench.timing import interleaved, show, spread

NEEDS = ("datatrove",)
ROOT = Path(__file__).resolve().parents[1]

PLAIN_LOOP = """
import sys, numpy as np, pyarrow as pa, pathlib
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[2]); eos = tok.token_to_id("<|endoftext|>")
with open(sys.argv[3], "wb") as out:
    for shard in sorted(pathlib.Path(sys.argv[1]).glob("shards/*.arrow")):
        for batch in pa.ipc.open_stream(pa.memory_map(str(shard))):
            for text in batch.column("text").to_pylist():
                out.write(np.asarray(tok.encode(text, add_special_tokens=False).ids + [eos], dtype=np.uint16).tobytes())
"""

DATATROVE = """
import sys, pathlib, pyarrow as pa
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.tokens import DocumentTokenizer

def read(data, rank=0, world_size=1, folder=sys.argv[1]):
    import pathlib, pyarrow as pa  # in datatrove's worker processes
    from datatrove.data import Document
    shards = sorted(pathlib.Path(folder).glob("shards/*.arrow"))[rank::world_size]
    for shard in shards:
        for batch in pa.ipc.open_stream(pa.memory_map(str(shard))):
            for row in batch.select(["id", "text"]).to_pylist():
                yield Document(text=row["text"], id=row["id"])

if __name__ == "__main__":
    tasks = len(list(pathlib.Path(sys.argv[1]).glob("shards/*.arrow")))
    LocalPipelineExecutor([read, DocumentTokenizer(sys.argv[3], tokenizer_name_or_path=sys.argv[2],
                                                   eos_token="<|endoftext|>", shuffle_documents=False)],
                          tasks=tasks, workers=2, logging_dir=sys.argv[3] + "-logs").run()
"""


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def repeated_corpus(clean: Path, out: Path, times: int) -> Path:
    """The clean corpus with its shards listed `times` times (new ids: the same text, a larger corpus)."""
    import pyarrow as pa

    (out / "shards").mkdir(parents=True)
    n = 0
    for copy in range(times):
        for shard in sorted((clean / "shards").glob("*.arrow")):
            table = pa.ipc.open_stream(pa.memory_map(str(shard))).read_all()
            table = table.set_column(
                table.schema.get_field_index("id"),
                "id",
                pa.array([f"{copy}-{i}" for i in table.column("id").to_pylist()]),
            )
            with (
                pa.OSFile(str(out / "shards" / f"shard-{n:05d}.arrow"), "wb") as sink,
                pa.ipc.new_stream(sink, table.schema) as writer,
            ):
                writer.write_table(table)
            n += 1
    manifest = json.loads((clean / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "rows": manifest["rows"] * times, "shards": []}))
    return out


def main(out_dir: Path, repeats: int = 3) -> dict:
    from train.tokenizer import save_tokenizer, train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clean = clean_corpus(tmp)
        manifest = json.loads((clean / "manifest.json").read_text())
        mb = sum(s["text_bytes"] for s in manifest["shards"]) / 1e6
        tok = tmp / "tok"
        save_tokenizer(train_tokenizer([clean], 8192), tok)
        tok_json = str(tok / "tokenizer.json")

        def ours(split: str = "id-hash", corpus: Path = clean) -> tuple[float, float]:
            out = tmp / "ours"
            rss, wall, code = peak_rss(
                [
                    sys.executable,
                    "-m",
                    "train",
                    "tokenize",
                    "--data",
                    str(corpus),
                    "--tokenizer",
                    str(tok),
                    "--output",
                    str(out),
                    "--split",
                    split,
                    "--val-fraction",
                    "0.02",
                ]
            )
            assert code == 0, "train tokenize failed"
            shutil.rmtree(out)
            return wall, rss

        def script(source: str) -> tuple[float, float]:
            out = tmp / "baseline"
            cmd = [sys.executable, "-c", source, str(clean), tok_json, str(out)]
            rss, wall, code = peak_rss(cmd)
            remove(out, Path(str(out) + "-logs"))  # a file (the plain loop's) or folders (datatrove's)
            if code:  # run it again to show why
                why = subprocess.run(cmd, capture_output=True, text=True).stderr[-3000:]
                remove(out, Path(str(out) + "-logs"))
                raise RuntimeError(f"baseline failed:\n{why}")
            return wall, rss

        rss: dict[str, list[float]] = {}

        def rate(name: str, run) -> float:
            wall, peak = run()
            rss.setdefault(name, []).append(peak)
            return mb / wall

        figures = interleaved(
            {
                "ours": lambda: rate("ours", ours),
                "ours, cluster split": lambda: rate("ours, cluster split", lambda: ours("cluster")),
                "plain tokenizers loop": lambda: rate("plain tokenizers loop", lambda: script(PLAIN_LOOP)),
                "datatrove DocumentTokenizer": lambda: rate("datatrove DocumentTokenizer", lambda: script(DATATROVE)),
            },
            repeats,
        )
        growth = {}
        for times in (1, 4):
            corpus = repeated_corpus(clean, tmp / f"x{times}", times) if times > 1 else clean
            wall, peak = ours(corpus=corpus)
            growth[f"{times}x"] = {"mb": mb * times, "mb_per_s": mb * times / wall, "peak_rss_mb": peak}
    print(
        f"clean corpus {mb:.1f} MB of text, 8k BPE; MB/s of the whole process, median (min-max) of {repeats} "
        f"rounds after a warm-up"
    )
    print(f"{'':<32}{'MB/s':>22}{'peak RSS MB':>14}")
    for name, values in figures.items():
        print(f"{name:<32}{show(values, '.2f'):>22}{max(rss[name]):>14.0f}")
    print(
        "train tokenize (id-hash split) as the corpus grows: "
        + ", ".join(
            f"{k} ({g['mb']:.0f} MB) {g['mb_per_s']:.2f} MB/s, {g['peak_rss_mb']:.0f} MB peak"
            for k, g in growth.items()
        )
    )
    return {
        "text_mb": mb,
        "mb_per_s": {name: spread(values) for name, values in figures.items()},
        "peak_rss_mb": {name: max(values) for name, values in rss.items()},
        "growth": growth,
    }
