"""Language ID computed from lid.176's own numbers (corpus.language_id) gives fastText's own predictions:
the same labels, the same probabilities to within float rounding, on real pages in eight languages and on
text that exercises fastText's reading rules."""

import copy
import pickle

import pytest
from datatrove.data import Document
from datatrove.utils.lid import FT176LID

import corpus.language_id as language_id
from corpus.filters import bundled_lid_model_path
from corpus.language_id import WordTableLID, cut_at_whitespace
from corpus.readers import RawDocumentReader

# fastText's reading rules: its whitespace (and no other), its end-of-line token ending the line, label-like
# tokens, multi-byte characters, empty and blank text
RULES = [
    "",
    " \t\r\x0b\x0c ",
    "the cat sat on the mat </s> der Hund schläft im Garten und träumt von Knochen",
    "the cat sat</s> on the mat",
    "__label__de __label__fr the quick brown fox __label__xx jumps",
    "ein\x00Haus\x00am\x00See mit\rvielen\x0bFenstern\x0cund Türen",
    "the\u00a0non\u2028breaking\x85spaces\x1care\u3000parts of words",
    "日本語の文章です。これはテストです。東京都に住んでいます。",
    "Это предложение на русском языке, и оно довольно длинное.",
    "emoji 🙂🙂🙂 and combining e\u0301 marks \u0301\u0301 in text",
    "x" * 300 + " " + "ü" * 150 + " " + "語" * 120,
]


@pytest.fixture(scope="module")
def texts(shared_data) -> list[str]:
    return [d.text for d in RawDocumentReader([str(shared_data / "html-sample")]).run()] + RULES


def fasttext_predictions(texts: list[str], languages, k: int) -> list:
    reference = FT176LID(languages, k)
    reference.MODEL_URL = bundled_lid_model_path()
    return [reference.predict(Document(text=text, id="")) for text in texts]


def assert_same_predictions(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for ((lang, score), pairs), ((their_lang, their_score), their_pairs) in zip(ours, theirs):
        assert lang == their_lang
        assert score == pytest.approx(their_score, abs=2e-5)
        assert pairs.keys() == their_pairs.keys()
        assert list(pairs.values()) == pytest.approx(list(their_pairs.values()), abs=2e-5)


def word_table(languages, k: int) -> WordTableLID:
    model = WordTableLID(languages, k)
    model.MODEL_URL = bundled_lid_model_path()
    return model


@pytest.mark.parametrize(("languages", "k"), [(["en"], 1), (None, -1), (["de", "fr", "ja", "ko"], 3)])
def test_predictions_are_fasttexts(texts, languages, k):
    ours = word_table(languages, k).predict_many([Document(text=text, id="") for text in texts])
    assert_same_predictions(ours, fasttext_predictions(texts, languages, k))
    assert len({lang for (lang, _), _ in ours}) >= 6  # the pages really are in many languages


@pytest.mark.parametrize(("table", "group"), [(400, 300), (120, 300)])
def test_bounded_memory_changes_no_prediction(texts, monkeypatch, table, group):
    """A small table of remembered tokens (it fills, keeps the current group's tokens, starts over, or is
    bypassed by a group with more distinct tokens than it holds), long tokens hashed in windows that cut
    multi-byte characters, long texts read in pieces: the predictions stay fastText's."""
    monkeypatch.setattr(WordTableLID, "TABLE_TOKENS", table)
    monkeypatch.setattr(language_id, "GROUP_TOKENS", group)
    monkeypatch.setattr(language_id, "SLAB_BYTES", 37)
    monkeypatch.setattr(language_id, "PIECE_BYTES", 501)
    texts = texts[::5] + RULES  # every 5th page: small tables and windows make many small steps
    ours = word_table(["en"], 1)
    predictions = []
    for start in range(0, len(texts), 16):  # the table carries over from batch to batch
        predictions += ours.predict_many([Document(text=text, id="") for text in texts[start : start + 16]])
        assert len(ours._known) <= table
    assert_same_predictions(predictions, fasttext_predictions(texts, ["en"], 1))


def test_copies_of_the_step_share_one_table(texts, monkeypatch):
    """datatrove runs each task on its own copy of the step (unpickled in a worker, or deep-copied): a later copy
    in the same process starts with the tokens an earlier one computed, and predicts the same."""
    first = word_table(["en"], 1)
    docs = [Document(text=text, id="") for text in texts[:20]]
    expected = first.predict_many(docs)
    computed = []
    token_rows = WordTableLID.token_rows
    monkeypatch.setattr(
        WordTableLID, "token_rows", lambda self, tokens: computed.append(len(tokens)) or token_rows(self, tokens)
    )
    for later in (pickle.loads(pickle.dumps(first)), copy.deepcopy(first)):
        assert_same_predictions(later.predict_many(docs), expected)
    assert computed == []  # no token's rows were computed again


def test_long_text_is_cut_only_at_whitespace():
    data = ("word " * 50 + "x" * 300 + "\tend\n" + "ü " * 40).encode()
    pieces = list(cut_at_whitespace(data, 64))
    assert b"".join(pieces) == data
    assert all(piece.split() == piece.strip().split() for piece in pieces)
    assert [token for piece in pieces for token in piece.split()] == data.split()  # no token is cut
    assert max(map(len, pieces)) == len(b"x" * 300) + 1  # only the token longer than a piece makes a longer one


LANGUAGES = {
    "aa": "river stone water mountain valley forest meadow cloud rain thunder",
    "bb": "kirja talo metsä järvi vuori pilvi sade ukkonen niitty laakso",
    "cc": "дерево камень вода гора долина лес луг облако дождь гром",
}


TRAIN = """
import sys, fasttext
root = sys.argv[1]
for loss in ("hs", "softmax"):
    model = fasttext.train_supervised(
        root + "/train.txt", loss=loss, dim=8, minn=2, maxn=4, epoch=5, bucket=5000, thread=1, verbose=0
    )
    model.save_model(f"{root}/{loss}.bin")
    if loss == "hs":
        model.quantize(input=root + "/train.txt", qnorm=True, cutoff=300, dsub=2, retrain=False)
        model.save_model(root + "/hs.ftz")
"""


@pytest.fixture(scope="module")
def small_models(tmp_path_factory) -> dict[str, str]:
    """fastText models trained here: hierarchical softmax as lid.176 (uncompressed; compressed with pruned
    buckets and quantized norms), and one with a softmax loss, which fastText itself predicts. Trained in a
    fresh interpreter: once datatrove's imports have loaded their libraries, fastText's training on this
    machine sometimes stops with "Encountered NaN" (its predictions are not affected)."""
    import random
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("fasttext")
    rng = random.Random(0)
    lines = []
    for _ in range(3000):
        label = rng.choice(sorted(LANGUAGES))
        lines.append(f"__label__{label} " + " ".join(rng.choices(LANGUAGES[label].split(), k=8)))
    (root / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-c", TRAIN, str(root)], check=True)
    return {"hs": str(root / "hs.bin"), "hs-compressed": str(root / "hs.ftz"), "softmax": str(root / "softmax.bin")}


@pytest.mark.parametrize("kind", ["hs", "hs-compressed", "softmax"])
def test_other_fasttext_models_predict_as_fasttext(small_models, kind):
    texts = [
        "stone water forest rain",
        "metsä järvi vuori",
        "гора долина лес",
        "stone järvi гора unknownword",
        "rivers stones mountains",
        "",
        "",
    ]
    ours, theirs = WordTableLID(None, -1), FT176LID(None, -1)
    ours.MODEL_URL = theirs.MODEL_URL = small_models[kind]
    got = ours.predict_many([Document(text=text, id="") for text in texts])
    assert_same_predictions(got, [theirs.predict(Document(text=text, id="")) for text in texts])
    assert (ours._words is False) == (kind == "softmax")  # only the softmax model goes to fastText
