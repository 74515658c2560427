"""fastText language ID (lid.176) computed from the model file's own numbers, a distinct word at a time.

fastText's supervised prediction for a line of text is: split it on whitespace; each token adds the input rows of
its ids (its own id when it is in the vocabulary, and the ids of its character n-grams, hashed, kept only where
the compressed model kept the bucket); the hidden vector is the mean of all those rows; the output layer (a
hierarchical softmax for lid.176) turns it into label probabilities. A token adds the same rows each time it
appears, so this module keeps each distinct token's row sum and id count (for a bounded number of tokens): a
text costs a split and a dictionary lookup per token, where fastText hashes every n-gram of every token again.
New tokens are hashed for many documents at once with numpy. The predictions are fastText's: the same labels,
the same probabilities to within float rounding (tests compare them with fastText's own on real pages).

A model this module does not implement (another loss, word n-grams) is predicted by fastText itself."""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np
from datatrove.data import Document
from datatrove.utils.lid import FT176LID

from corpus import CorpusError

FASTTEXT_MAGIC, FASTTEXT_VERSION = 793712314, 12
FNV_OFFSET, FNV_PRIME = np.uint32(2166136261), np.uint32(16777619)  # fastText's string hash: 32-bit FNV-1a
LOSS_HIERARCHICAL_SOFTMAX = 1
EOS = b"</s>"  # fastText's end-of-line token: reading a line stops at it
LABEL_PREFIX = b"__label__"  # a token like this is a label, never a word
WHITESPACE = b" \t\n\r\x0b\x0c\x00"  # the bytes fastText splits on
PIECE_BYTES = 1 << 20  # a longer text is read in pieces of about this size (cut at whitespace): memory stays flat
GROUP_TOKENS = 1 << 16  # tokens looked up together (numpy's per-call cost spread over many documents)
SLAB_TOKENS = 1 << 15  # new tokens are hashed this many at a time
SLAB_BYTES = 1 << 18  # a token longer than this is hashed in windows of its characters


@dataclass
class FastTextModel:
    """The parts of a fastText model file that a prediction uses."""

    dim: int
    minn: int
    maxn: int
    bucket: int
    word_ngrams: int
    loss: int
    words: dict[bytes, int]  # vocabulary word -> its id (labels are not words)
    labels: list[str]
    label_counts: list[int]
    pruned_keys: np.ndarray | None  # kept n-gram buckets, sorted; None: every bucket has a row
    pruned_rows: np.ndarray | None  # the row (after the words') of each kept bucket
    input_rows: np.ndarray  # (words + buckets, dim) float32, decoded from product quantization if compressed
    output_rows: np.ndarray  # (labels, dim) float32


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data, self.offset, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise CorpusError(f"{self.path}: not a fastText model file (it ends early)")
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.offset + size > len(self.data):
            raise CorpusError(f"{self.path}: not a fastText model file (it ends early)")
        values = np.frombuffer(self.data, dtype, count, self.offset)
        self.offset += size
        return values

    def matrix(self) -> np.ndarray:
        """fastText's DenseMatrix, or its QuantMatrix (product quantization, optionally of the norms) decoded."""
        quantized = self.take("<?")
        if not quantized:
            rows, cols = self.take("<qq")
            return self.array("<f4", rows * cols).reshape(rows, cols).copy()
        quantized_norm, rows, cols, code_size = self.take("<?qqi")
        codes = self.array(np.uint8, code_size)
        table = self.product_quantizer(codes, rows)
        if quantized_norm:
            norm_codes = self.array(np.uint8, rows)
            table *= self.product_quantizer(norm_codes, rows)
        return table

    def product_quantizer(self, codes: np.ndarray, rows: int) -> np.ndarray:
        dim, subquantizers, sub_dim, last_sub_dim = self.take("<iiii")
        centroids = self.array("<f4", dim * 256)
        table = np.empty((rows, dim), np.float32)
        codes = codes.reshape(rows, subquantizers)
        for m in range(subquantizers):
            width = last_sub_dim if m == subquantizers - 1 else sub_dim
            start = m * 256 * sub_dim
            table[:, m * sub_dim : m * sub_dim + width] = centroids[start : start + 256 * width].reshape(256, width)[
                codes[:, m]
            ]
        return table


def check_fasttext_model(path: str) -> None:
    """A clear error now, before any work, for a model path that is missing or not a fastText model."""
    if "://" in path:
        return  # a URL: datatrove downloads it when the model is first used
    try:
        with open(path, "rb") as f:
            header = f.read(8)
    except OSError as error:
        raise CorpusError(f"fastText model {path}: {error.strerror or error}") from None
    if len(header) < 8 or struct.unpack("<ii", header) != (FASTTEXT_MAGIC, FASTTEXT_VERSION):
        raise CorpusError(f"{path}: not a fastText model file of format version {FASTTEXT_VERSION}")


def read_fasttext_model(path: str) -> FastTextModel:
    """Read a fastText model (.bin, or .ftz compressed) as fastText's FastText::loadModel does."""
    with open(path, "rb") as f:
        reader = _Reader(f.read(), path)
    if reader.take("<ii") != (FASTTEXT_MAGIC, FASTTEXT_VERSION):
        raise CorpusError(f"{path}: not a fastText model file of format version {FASTTEXT_VERSION}")
    dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, _model, bucket, minn, maxn, _lr_update = reader.take("<12i")
    reader.take("<d")
    size, nwords, nlabels, _ntokens, pruned_size = reader.take("<iiiqq")
    words: dict[bytes, int] = {}
    labels, label_counts = [], []
    for index in range(size):
        end = reader.data.index(b"\0", reader.offset)
        entry = reader.data[reader.offset : end]
        reader.offset = end + 1
        count, kind = reader.take("<qb")
        if kind == 0:
            words[entry] = index
        else:
            labels.append(entry.decode("utf-8"))
            label_counts.append(count)
    if len(words) != nwords or len(labels) != nlabels:
        raise CorpusError(f"{path}: the model's dictionary does not hold what its header says")
    pruned_keys = pruned_rows = None
    if pruned_size >= 0:
        pairs = reader.array("<i4", 2 * pruned_size).reshape(-1, 2)
        order = np.argsort(pairs[:, 0])
        pruned_keys, pruned_rows = pairs[order, 0].astype(np.int64), pairs[order, 1].astype(np.int64)
    input_rows = reader.matrix()
    output_rows = reader.matrix()
    return FastTextModel(
        dim, minn, maxn, bucket, word_ngrams, loss, words, labels, label_counts, pruned_keys, pruned_rows,
        input_rows, output_rows,
    )  # fmt: skip


def hierarchical_softmax_paths(counts: list[int]) -> np.ndarray:
    """fastText's Huffman tree over the labels (HierarchicalSoftmaxLoss::buildTree), as each label's path from
    the root: (labels, longest path) indexes into [log(1 - f) of each inner node, log(f) of each, 0], where f is
    the node's sigmoid and going right takes log(f); shorter paths are padded with the final 0."""
    labels = len(counts)
    nodes = 2 * labels - 1
    count = [float(c) for c in counts] + [1e15] * (labels - 1)
    parent, right_child = [-1] * nodes, [False] * nodes
    leaf, node = labels - 1, labels
    for inner in range(labels, nodes):
        pair = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                pair.append(leaf)
                leaf -= 1
            else:
                pair.append(node)
                node += 1
        count[inner] = count[pair[0]] + count[pair[1]]
        parent[pair[0]] = parent[pair[1]] = inner
        right_child[pair[1]] = True
    paths = []
    for label in range(labels):
        path, child = [], label
        while parent[child] != -1:
            path.append(parent[child] - labels + (labels - 1 if right_child[child] else 0))
            child = parent[child]
        paths.append(path)
    padded = np.full((labels, max(map(len, paths))), 2 * (labels - 1))
    for label, path in enumerate(paths):
        padded[label, : len(path)] = path
    return padded


# per process and model file: the model's arrays and the token table. datatrove gives each task its own copy of
# the step (unpickled, or deep-copied), and each copy would otherwise read the model again and start with an
# empty table; the copies run one after another, so they can share one.
_LOADED: dict[tuple, dict] = {}


class WordTableLID(FT176LID):
    """datatrove's fastText language ID (same predictions, same return values) computed a distinct token at a
    time from the model's own rows; `predict_many` predicts a list of documents together."""

    TABLE_TOKENS = 1 << 18  # distinct tokens remembered (about 40 MB)

    def __init__(self, languages: list[str] | None = None, k: int = -1):
        super().__init__(languages, k)
        self._words: FastTextModel | None = None  # then the model's arrays and the token table (`_load`)
        self._ready: dict[int, tuple] = {}  # id(document) -> (document, prediction), made by `prepare`

    # -- the model -------------------------------------------------------------------------------------------
    def _load(self) -> FastTextModel | None:
        if self._words is None:
            path = self.model_file()
            stat = os.stat(path)
            key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size, self.TABLE_TOKENS)
            if key not in _LOADED:
                _LOADED[key] = self._read(path)
            vars(self).update(_LOADED[key])
        return self._words or None

    def _read(self, path: str) -> dict:
        """The model's arrays and an empty token table: the attributes `_load` gives every copy of the step."""
        model = read_fasttext_model(path)
        if model.loss != LOSS_HIERARCHICAL_SOFTMAX or model.word_ngrams > 1:
            return {"_words": False}  # fastText itself predicts
        if model.pruned_keys is None:
            bucket_rows = np.arange(len(model.words), len(model.words) + model.bucket, dtype=np.int32)
        else:  # each n-gram bucket's input row, -1 for a bucket the compressed model dropped (fastText's pushHash)
            bucket_rows = np.full(model.bucket, -1, np.int32)
            bucket_rows[model.pruned_keys] = len(model.words) + model.pruned_rows
        return {
            "_words": model,
            "_paths": hierarchical_softmax_paths(model.label_counts),
            "_label_names": [label.split("__")[2] for label in model.labels],
            "_bucket_rows": bucket_rows,
            "_sums": np.zeros((self.TABLE_TOKENS, model.dim), np.float32),
            "_ids": np.zeros(self.TABLE_TOKENS, np.float64),
            "_known": {},
        }

    def model_file(self) -> str:
        """MODEL_URL itself when it is a local file (read in place, nothing copied); else datatrove's download."""
        if os.path.isfile(self.MODEL_URL):
            return self.MODEL_URL
        from datatrove.io import cached_asset_path_or_download

        return cached_asset_path_or_download(
            self.MODEL_URL, namespace="lid", subfolder=self.MODEL_SUBFOLDER, desc="fast-text language identifier"
        )

    @property
    def model(self):
        """fastText's own model, for a model file this module does not compute (datatrove's predict uses it)."""
        if self._model is None:
            try:
                from fasttext.FastText import _FastText
            except ImportError:
                raise CorpusError(
                    f"{self.MODEL_URL}: this model needs fastText itself (pip install fasttext-numpy2-wheel)"
                ) from None
            self._model = _FastText(self.model_file())
        return self._model

    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("_words", "_known", "_sums", "_ids", "_paths", "_label_names", "_ready", "_bucket_rows"):
            state.pop(name, None)
        state["_model"] = None  # fastText's model, if loaded, is loaded again where the copy runs
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._words, self._ready = None, {}

    # -- predictions ---------------------------------------------------------------------------------------
    def predict(self, doc: Document) -> tuple[tuple[str, float], dict[str, float]]:
        """datatrove's call: ((best language, its score), {language: score}), as FastTextLID.predict returns."""
        ready = self._ready.pop(id(doc), None)
        return ready[1] if ready and ready[0] is doc else self.predict_many([doc])[0]

    def prepare(self, docs: list[Document]) -> list:
        """Predict `docs` together; `predict` then answers for each of them once. Returns the predictions."""
        predictions = self.predict_many(docs)
        for doc, prediction in zip(docs, predictions):
            self.remember(doc, prediction)
        return predictions

    def remember(self, doc: Document, prediction) -> None:
        """`predict(doc)` answers `prediction` once."""
        self._ready[id(doc)] = (doc, prediction)

    def predict_many(self, docs: list[Document]) -> list:
        if self._load() is None:
            return [super(WordTableLID, self).predict(doc) for doc in docs]
        hidden = self.hidden(docs)
        inner = self._words.output_rows[: len(self._label_names) - 1]
        # elementwise products, not a matrix product: these are small, and numpy's BLAS would start threads
        # that keep spinning on the other cores (seconds of CPU over a corpus)
        f = 1.0 / (1.0 + np.exp(-np.einsum("bd,nd->bn", hidden, inner)))
        # fastText's std_log: log(x + 1e-5); a label's score is the sum over its path (HierarchicalSoftmaxLoss::dfs)
        logs = np.concatenate((np.log(1.0 - f + 1e-5), np.log(f + 1e-5), np.zeros((len(f), 1))), axis=1)
        scores = logs[:, self._paths].sum(axis=2)
        return [self._answer(row) for row in scores]

    def _answer(self, scores: np.ndarray):
        if self.k == 1:
            order = [int(scores.argmax())]
        else:
            order = np.argsort(-scores, kind="stable")
            order = order[: self.k] if self.k > 0 else order
        floor = np.log(1e-5)  # fastText's search drops labels scoring below std_log(threshold 0)
        pairs = {self._label_names[i]: float(np.float32(np.exp(scores[i]))) for i in order if scores[i] >= floor}
        best = max(pairs.items(), key=lambda pair: pair[1])
        return best, {lang: pairs.get(lang, 0.0) for lang in self.languages} if self.languages else pairs

    def hidden(self, docs: list[Document]) -> np.ndarray:
        """fastText's hidden vector of each document: the mean input row of all its tokens' ids."""
        sums = np.zeros((len(docs), self._words.dim), np.float64)
        ids = np.zeros(len(docs), np.float64)
        group, owners, size = [], [], 0
        for number, doc in enumerate(docs):
            for tokens in text_pieces(doc.text):
                if tokens:
                    group.append(tokens)
                    owners.append(number)
                    size += len(tokens)
                if size >= GROUP_TOKENS:
                    self._add_group(group, owners, sums, ids)
                    group, owners, size = [], [], 0
        if group:
            self._add_group(group, owners, sums, ids)
        return sums / np.maximum(ids, 1)[:, None]

    def _add_group(self, group: list[list[bytes]], owners: list[int], sums: np.ndarray, ids: np.ndarray) -> None:
        tokens = list(chain.from_iterable(group))
        # the table is looked up once per distinct token of the group (a small dict finds them: it stays in the CPU
        # caches, and each token's hash is computed once)
        distinct = dict.fromkeys(tokens)
        unique = list(distinct)
        slots = np.fromiter(map(self._known.get, unique, repeat(-1)), np.int64, len(unique))
        table_sums, table_ids = self._sums, self._ids
        absent = int((slots < 0).sum())
        if absent:
            if len(self._known) + absent > self.TABLE_TOKENS:
                self._make_room(unique, absent)  # moves the known tokens: look them up again
                slots = np.fromiter(map(self._known.get, unique, repeat(-1)), np.int64, len(unique))
            missing = np.flatnonzero(slots < 0)
            new = [unique[i] for i in missing]
            if len(self._known) + len(new) <= self.TABLE_TOKENS:
                first = len(self._known)
                table_sums[first : first + len(new)], table_ids[first : first + len(new)] = self.token_rows(new)
                self._known.update(zip(new, range(first, first + len(new))))
                slots[missing] = np.arange(first, first + len(new))
            else:  # more distinct tokens in this group than the table holds: computed for this group alone
                table_sums, table_ids = self.token_rows(unique)
                slots = np.arange(len(unique))
        distinct.update(zip(unique, range(len(unique))))
        slots = slots[np.fromiter(map(distinct.__getitem__, tokens), np.int64, len(tokens))]
        starts = np.concatenate(([0], np.cumsum([len(piece) for piece in group])[:-1]))
        np.add.at(sums, owners, np.add.reduceat(table_sums[slots], starts, dtype=np.float64))
        np.add.at(ids, owners, np.add.reduceat(table_ids[slots], starts))

    def _make_room(self, tokens: list[bytes], wanted: int) -> None:
        """The table is full: keep only the known tokens of the current group (those likeliest to come again)."""
        live = list(set(tokens).intersection(self._known))
        if len(live) + wanted > self.TABLE_TOKENS:
            live = []
        old = np.fromiter(map(self._known.__getitem__, live), np.int64, len(live))
        self._sums[: len(live)], self._ids[: len(live)] = self._sums[old], self._ids[old]
        self._known.clear()  # the same dict: every copy of the step in this process shares it
        self._known.update(zip(live, range(len(live))))

    # -- tokens ----------------------------------------------------------------------------------------------
    def token_rows(self, tokens: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Each token's row sum and its number of ids, as fastText's Dictionary::getLine adds them."""
        model = self._words
        sums = np.zeros((len(tokens), model.dim), np.float64)  # summed in float64, kept as float32
        ids = np.zeros(len(tokens), np.float64)
        own = np.fromiter(map(model.words.get, tokens, repeat(-1)), np.int64, len(tokens))
        has_own = np.flatnonzero(own >= 0)
        sums[has_own] += model.input_rows[own[has_own]]
        ids[has_own] += 1
        if model.maxn > 0:
            for first in range(0, len(tokens), SLAB_TOKENS):
                for of, rows in self.ngram_rows(tokens[first : first + SLAB_TOKENS]):
                    # `of` is sorted: each token's n-gram rows are summed in one reduceat
                    starts = np.flatnonzero(np.diff(of, prepend=-1))
                    sums[first + of[starts]] += np.add.reduceat(model.input_rows[rows], starts, dtype=np.float64)
                    ids[first + of[starts]] += np.diff(starts, append=len(of))
        # the end-of-line token has no n-grams; a label adds nothing
        specials = (
            [i for i, token in enumerate(tokens) if token == EOS or token.startswith(LABEL_PREFIX)]
            if (EOS in tokens or any(LABEL_PREFIX in token for token in tokens if token[:1] == b"_"))
            else []
        )
        for i in specials:
            eos = model.words.get(EOS) if tokens[i] == EOS else None
            sums[i] = 0.0 if eos is None else model.input_rows[eos]
            ids[i] = 0 if eos is None else 1
        return sums.astype(np.float32), ids

    def ngram_rows(self, tokens: list[bytes]):
        """For each n (model.minn..model.maxn): (token index, input row) of every kept character n-gram of
        "<token>" (Dictionary::computeSubwords), token indexes ascending. A token longer than SLAB_BYTES is
        hashed in windows of its characters (memory stays bounded)."""
        model = self._words
        lengths = np.fromiter(map(len, tokens), np.int64, len(tokens)) + 2
        if lengths.max(initial=0) <= SLAB_BYTES:
            buf = b"<" + b">\n<".join(tokens) + b">\n"
            yield from self._window_ngrams(buf, lengths, lengths, np.arange(len(tokens)), True, True)
            return
        overlap = 4 * model.maxn  # bytes of the n-grams that start in a window and end after it
        for index, word in enumerate(b"<" + token + b">" for token in tokens):
            for start in range(0, len(word), SLAB_BYTES):
                window = word[start : start + SLAB_BYTES + overlap]
                limit = np.array([min(SLAB_BYTES, len(word) - start)])  # n-grams start within `limit` bytes
                owner = np.array([index])
                yield from self._window_ngrams(
                    window + b"\n", np.array([len(window)]), limit, owner, start == 0, start + len(window) == len(word)
                )

    def _window_ngrams(self, buf: bytes, lengths, limits, owners, word_start: bool, word_end: bool):
        """The n-grams of the "\\n"-separated windows in `buf` (a window is a whole "<token>" or a slice of one,
        `word_start`/`word_end` say which), starting within each window's `limits` bytes. Each character start's
        hash is extended by one character per n, as fastText's loop does."""
        model = self._words
        buf = np.frombuffer(buf, np.uint8)
        signed = buf.view(np.int8).astype(np.int32).view(np.uint32)  # fastText hashes each byte sign-extended
        chars = np.flatnonzero((buf & 0xC0) != 0x80)  # character starts (each separator "\n" is one)
        char_bytes = np.diff(chars, append=len(buf))
        separator = buf[chars] == 10
        window = np.cumsum(separator) - separator  # each character's window
        index = np.arange(len(chars))
        window_end = np.flatnonzero(separator)[window]  # the window's separator, as a character index
        offset = chars - (np.cumsum(lengths + 1) - lengths - 1)[window]  # byte offset in the window
        inside = ~separator & (offset < limits[window])
        hashes = np.full(len(chars), FNV_OFFSET, np.uint32)
        for n in range(1, model.maxn + 1):
            last = np.minimum(index + n - 1, len(chars) - 1)  # the character this n adds
            at, width = chars[last], char_bytes[last]
            hashes = (hashes ^ signed[at]) * FNV_PRIME
            for byte in range(1, int(width.max(initial=1))):
                more = np.flatnonzero(width > byte)
                hashes[more] = (hashes[more] ^ signed[at[more] + byte]) * FNV_PRIME
            if n < model.minn:
                continue
            keep = inside & (index + n <= window_end)
            if n == 1:  # a lone "<" or ">" is not an n-gram
                keep &= ~((offset == 0) & word_start) & ~((index + 1 == window_end) & word_end)
            row = self._bucket_rows[hashes[keep] % np.uint32(model.bucket)]
            kept = row >= 0
            yield owners[window[keep][kept]], row[kept]


def text_pieces(text: str):
    """A text's tokens as fastText reads the line (`text` with newlines made spaces, then one "\\n"): split on
    fastText's whitespace bytes, up to and including the first end-of-line token. A long text comes in pieces
    of about PIECE_BYTES, cut at whitespace."""
    data = text.encode("utf-8", "surrogatepass")
    if b"\0" in data:
        data = data.replace(b"\0", b" ")
    pieces = [data] if len(data) <= PIECE_BYTES else list(cut_at_whitespace(data, PIECE_BYTES))
    for number, piece in enumerate(pieces, 1):
        tokens = piece.split()
        if EOS in piece and EOS in tokens:
            yield tokens[: tokens.index(EOS) + 1]
            return
        if number == len(pieces):
            tokens.append(EOS)
        yield tokens


SPACE = re.compile(rb"[ \t\n\r\x0b\x0c]")


def cut_at_whitespace(data: bytes, size: int):
    """`data` in consecutive pieces of about `size` bytes, each cut just before a whitespace byte (a token longer
    than `size` stays whole)."""
    start = 0
    while len(data) - start > size:
        cut = max(data.rfind(space, start + 1, start + size) for space in b" \t\n\r\x0b\x0c")
        if cut <= start:
            found = SPACE.search(data, start + size)
            cut = found.start() if found else len(data)
        yield data[start:cut]
        start = cut
    if start < len(data):
        yield data[start:]
