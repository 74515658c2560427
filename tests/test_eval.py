"""Perplexity against direct reference computations; GLUE fine-tuning and the KD losses."""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from eval import EvalError, kd
from eval.glue import Classifier, GlueConfig, batches, encode, finetune, matthews, param_groups, read_tsv
from eval.perplexity import ids_perplexity, load_causal_lm, shard_perplexity, text_perplexity
from train.model import GPT, GPTConfig
from train.tokenizer import gpt2_tokenizer, save_tokenizer


def save_small_gpt2(path: Path, n_layer: int, seed: int = 0, n_positions: int = 32) -> Path:
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=n_positions, n_embd=32, n_layer=n_layer, n_head=2)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    save_tokenizer(gpt2_tokenizer(), path)
    return path


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory) -> Path:
    return save_small_gpt2(tmp_path_factory.mktemp("lm"), n_layer=2)


def test_sliding_window_matches_brute_force_reference(lm_dir, shared_data):
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text()[:400]
    ids = torch.tensor(tok(text).input_ids[:60])
    context = 16
    # reference: every token i >= 1 scored by transformers with up to context-1 tokens before it
    nll = 0.0
    with torch.no_grad():
        for i in range(1, len(ids)):
            window = ids[max(0, i - context + 1): i + 1].unsqueeze(0)
            nll -= torch.log_softmax(hf(window).logits[0, -2], -1)[window[0, -1]].item()
    ours = ids_perplexity(model, ids, context=context, stride=1)
    assert ours["tokens"] == len(ids) - 1
    assert ours["ppl"] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-4)
    # stride == context: disjoint windows, each scoring all but its first token (HF's own loss per chunk)
    ref_nll, ref_n = 0.0, 0
    with torch.no_grad():
        for b in range(0, len(ids), context):
            chunk = ids[b:b + context].unsqueeze(0)
            if chunk.size(1) > 1:
                ref_nll += hf(chunk, labels=chunk).loss.item() * (chunk.size(1) - 1)
                ref_n += chunk.size(1) - 1
    disjoint = ids_perplexity(model, ids, context=context, stride=context)
    assert disjoint["tokens"] == ref_n and disjoint["ppl"] == pytest.approx(math.exp(ref_nll / ref_n), rel=1e-4)
    # the text entry point gives the same as the token one
    assert text_perplexity(model, tok, text, context=16, stride=1, max_tokens=60)["ppl"] == pytest.approx(ours["ppl"])


def test_blocks_protocol_matches_run_clm_style_reference(lm_dir, shared_data):
    hf = transformers.AutoModelForCausalLM.from_pretrained(lm_dir).eval()
    model, tok = load_causal_lm(lm_dir)
    text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text()[:3000]
    context = 32  # the tiny model's n_positions: the default block length
    # reference: run_clm.py's grouping (concatenate, cut into blocks, drop the remainder), labels = inputs,
    # one batch of all blocks, perplexity = exp(loss)
    ids = tok(text).input_ids
    n_blocks = len(ids) // context
    assert len(ids) % context  # the text has a remainder to drop
    blocks = torch.tensor(ids[: n_blocks * context]).view(n_blocks, context)
    with torch.no_grad():
        loss = hf(blocks, labels=blocks).loss.item()
    got = text_perplexity(model, tok, text, protocol="blocks")
    assert got["blocks"] == n_blocks and got["tokens"] == n_blocks * (context - 1)
    assert got["dropped_tokens"] == len(ids) - n_blocks * context
    assert got["ppl"] == pytest.approx(math.exp(loss), rel=1e-4)
    # per block: each block's summed loss is transformers' loss of that block alone
    items = text_perplexity(model, tok, text, protocol="blocks", per_item=True)["items"]
    with torch.no_grad():
        per_block = [hf(b[None], labels=b[None]).loss.item() * (context - 1) for b in blocks]
    assert [n for _, n in items] == [context - 1] * n_blocks
    assert [l for l, _ in items] == pytest.approx(per_block, rel=1e-4)
    sliding = text_perplexity(model, tok, text)
    assert sliding["protocol"] == "sliding" and sliding["tokens"] == len(ids) - 1 and sliding["ppl"] != pytest.approx(got["ppl"])


def test_shard_perplexity_equals_mean_block_loss(tmp_path, lm_dir):
    from train.tokenize_shards import tokenize_corpus
    from test_train import write_clean_corpus

    corpus = write_clean_corpus(tmp_path / "c", ["Some text about cats. " * 40, "More text about dogs. " * 40] * 20)
    # forty copies of two texts: held out by id (a cluster split would keep both clusters on one side)
    tokenize_corpus(corpus, lm_dir, tmp_path / "tokens", block_size=16, val_fraction=0.3, split="id-hash")
    model, _ = load_causal_lm(lm_dir)
    from train.data import TokenBlocks

    blocks = TokenBlocks(tmp_path / "tokens", "val")
    x = blocks.batch(range(len(blocks)))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x[:, :-1]).logits.reshape(-1, 50257), x[:, 1:].reshape(-1)).item()
    got = shard_perplexity(model, tmp_path / "tokens", "val", batch_size=5)
    assert got["blocks"] == len(blocks) and got["nll"] == pytest.approx(expected, rel=1e-5)
    items = shard_perplexity(model, tmp_path / "tokens", "val", batch_size=5, per_item=True)["items"]
    with torch.no_grad():
        first = torch.nn.functional.cross_entropy(model(x[:1, :-1]).logits[0], x[0, 1:], reduction="sum").item()
    assert len(items) == len(blocks) and items[0] == pytest.approx([first, 16], rel=1e-5)
    assert sum(l for l, _ in items) / sum(n for _, n in items) == pytest.approx(got["nll"], rel=1e-6)


def test_perplexity_cli(lm_dir, tmp_path):
    out = tmp_path / "ppl.json"
    result = subprocess.run([sys.executable, "-m", "eval", "perplexity", str(lm_dir), "--max-tokens", "300", "--json", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wiki.test.raw: perplexity" in result.stdout
    data = json.loads(out.read_text())
    assert next(v for k, v in data.items() if k.endswith("wiki.test.raw"))["tokens"] == 299
    blocks = subprocess.run([sys.executable, "-m", "eval", "perplexity", str(lm_dir), "--max-tokens", "300", "--protocol", "blocks",
                             "--json", str(out)], capture_output=True, text=True)
    assert blocks.returncode == 0, blocks.stderr[-2000:]
    assert "9 blocks of 32, 12 remainder tokens dropped" in blocks.stdout
    assert next(v for k, v in json.loads(out.read_text()).items() if k.endswith("wiki.test.raw"))["tokens"] == 9 * 31
    bad = subprocess.run([sys.executable, "-m", "eval", "perplexity", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a model directory" in bad.stderr and "Traceback" not in bad.stderr


def test_evaluation_data_is_found_by_option_or_environment(lm_dir, shared_data, tmp_path):
    """No path of the checkout: from a folder with no ../shared beside it, the data comes from --eval-data or
    $EVAL_DATA; offline with neither, one line says what to pass."""
    import os

    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    env = {**os.environ, "HOME": str(tmp_path), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("EVAL_DATA", None)
    cmd = [sys.executable, "-m", "eval", "perplexity", str(lm_dir), "--max-tokens", "50"]
    missing = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr[-2000:]
    assert len(missing.stderr.strip().splitlines()) == 1 and "--eval-data DIR" in missing.stderr and "EVAL_DATA=DIR" in missing.stderr
    by_option = subprocess.run(cmd + ["--eval-data", str(shared_data)], capture_output=True, text=True, cwd=cwd, env=env)
    by_env = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env={**env, "EVAL_DATA": str(shared_data)})
    for result in (by_option, by_env):
        assert result.returncode == 0, result.stderr[-2000:]
        used = Path(result.stdout.split(": perplexity")[0].strip())
        assert used.resolve() == (shared_data / "wikitext-2-raw" / "wiki.test.raw").resolve()


def test_welch_interval_matches_scipy():
    from scipy import stats

    from eval.studies.report import noise_sentence
    from eval.studies.stats import summarize, welch_interval

    a, b = [10.1, 10.9, 10.4], [11.8, 12.6, 12.1, 12.2]
    ci = welch_interval(summarize(a), summarize(b))
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert ci["low"] == pytest.approx(ref.low) and ci["high"] == pytest.approx(ref.high)
    assert "real (the interval excludes 0); a is better" in noise_sentence("a", summarize(a), "b", summarize(b), "ppl", True)
    near = noise_sentence("a", summarize([1.0, 2.0, 3.0]), "b", summarize([1.5, 2.5, 3.5]), "ppl", True)
    assert "the interval includes 0, so no real difference is shown" in near


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU-only machine gives")
def test_device_mistakes_are_one_line(lm_dir):
    cases = [(["perplexity", str(lm_dir), "--device", "cuda"], "--device cuda: no cuda device is available"),
             (["glue", str(lm_dir), "--task", "sst2", "--device", "cuda:0"], "--device cuda:0: no cuda device is available"),
             (["glue", str(lm_dir), "--task", "rte", "--device", "gpu"], "--device 'gpu': not a torch device"),
             (["perplexity", str(lm_dir), "--dtype", "fp8"], "--dtype 'fp8': use fp32, bf16, fp16 or auto")]
    for command, message in cases:
        result = subprocess.run([sys.executable, "-m", "eval", *command], capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert message in result.stderr


def test_glue_readers_and_matthews(shared_data, tmp_path):
    texts, labels, skipped = read_tsv(shared_data / "glue" / "CoLA" / "dev.tsv", "cola")
    assert len(texts) == 1043 and set(labels) == {0, 1} and skipped == 0
    texts, labels, _ = read_tsv(shared_data / "glue" / "RTE" / "dev.tsv", "rte")
    assert len(texts[0]) == 2 and set(labels) == {0, 1}
    bad = tmp_path / "SST-2"
    bad.mkdir()
    (bad / "train.tsv").write_text("sentence\tlabel\ngood film\t1\nbroken row without label\nbad film\t0\nodd\t7\n")
    texts, labels, skipped = read_tsv(bad / "train.tsv", "sst2")
    assert texts == [("good film",), ("bad film",)] and labels == [1, 0] and skipped == 2
    assert matthews([1, 1, 0, 0], [1, 1, 0, 0]) == 1.0
    assert matthews([1, 0, 1, 0], [0, 1, 0, 1]) == -1.0
    assert matthews([1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx((2 * 1 - 1 * 0) / math.sqrt(3 * 2 * 1 * 2))


def synthetic_sst2(folder: Path, shared_data: Path, n_train: int = 240, n_dev: int = 60) -> Path:
    """SST-2-format data whose label is whether the sentence says 'excellent' or 'terrible'."""
    words = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_text().split()[:3000]
    rng = random.Random(0)
    (folder / "SST-2").mkdir(parents=True)
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = ["sentence\tlabel"]
        for _ in range(n):
            label = rng.randint(0, 1)
            sentence = rng.sample(words, 6) + ["excellent" if label else "terrible"] + rng.sample(words, 3)
            rows.append(" ".join(sentence) + f"\t{label}")
        (folder / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_finetuning_learns_a_learnable_task_deterministically(shared_data, tmp_path, lm_dir):
    data = synthetic_sst2(tmp_path / "glue", shared_data)
    cfg = GlueConfig(epochs=4, lr=2e-3, batch_size=16, seed=1)
    a = finetune(lm_dir, "sst2", data, cfg, save=tmp_path / "tuned")
    assert a["value"] >= 0.9, a
    b = finetune(lm_dir, "sst2", data, cfg)
    assert a["value"] == b["value"]
    assert len(a["dev_correct"]) == a["dev_examples"]
    assert sum(a["dev_correct"]) / a["dev_examples"] == pytest.approx(a["value"])
    assert json.loads((tmp_path / "tuned" / "classifier.json").read_text()) == {"task": "sst2", "n_labels": 2}


def softmax(row: list[float]) -> list[float]:
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def test_vanilla_kd_loss_against_a_direct_computation():
    s = [[1.0, -0.5, 2.0], [0.3, 0.3, -1.2]]
    t = [[2.5, 0.0, -1.0], [-0.4, 1.1, 0.2]]
    labels, T, alpha = [2, 1], 2.0, 0.35  # alpha != 1 - alpha: a swap changes the loss
    kl = sum(sum(pt * math.log(pt / ps) for pt, ps in zip(softmax([v / T for v in tr]), softmax([v / T for v in sr]), strict=True))
             for sr, tr in zip(s, t, strict=True)) / 2 * T**2
    ce = -sum(math.log(softmax(sr)[y]) for sr, y in zip(s, labels, strict=True)) / 2
    loss = kd.KDLoss(GlueConfig(kd="vanilla", kd_alpha=alpha, kd_temperature=T))
    got = loss(torch.tensor(s), torch.tensor(labels), None, torch.tensor(t), None, None)
    assert got.item() == pytest.approx((1 - alpha) * ce + alpha * kl, rel=1e-5)
    assert kd.KDLoss(GlueConfig(kd="none"))(torch.tensor(s), torch.tensor(labels), None, None, None, None).item() == pytest.approx(ce, rel=1e-5)


def test_annealing_loss_and_temperature_schedule():
    s, t, labels = [[1.0, -0.5], [0.3, 2.0]], [[3.5, -2.0], [-1.4, 4.0]], [0, 1]
    loss = kd.KDLoss(GlueConfig(kd="annealing", annealing_tau_max=7))
    for T in (1, 3, 7):  # phase 1: MSE to the teacher's logits scaled by T / tau_max
        loss.temperature = T
        expected = sum((a - b * T / 7) ** 2 for sr, tr in zip(s, t, strict=True) for a, b in zip(sr, tr, strict=True)) / 4
        assert loss(torch.tensor(s), torch.tensor(labels), None, torch.tensor(t), None, None).item() == pytest.approx(expected, rel=1e-5)
    loss.temperature = None  # phase 2: the labels only
    ce = -sum(math.log(softmax(sr)[y]) for sr, y in zip(s, labels, strict=True)) / 2
    assert loss(torch.tensor(s), torch.tensor(labels), None, torch.tensor(t), None, None).item() == pytest.approx(ce, rel=1e-5)

    # phase 1 of tau_max epochs: T = 1, 2, ..., 7, one value per epoch (5 steps each)
    plan = kd.annealing_plan(epochs=8, phase2_epochs=1, steps_per_epoch=5, tau_max=7)
    assert [kd.annealing_temperature(step, plan["phase1_steps"], 7) for step in range(35)] == [e + 1 for e in range(7) for _ in range(5)]
    assert plan["slice_ends"] == [5, 10, 15, 20, 25, 30, 35] and "one temperature per epoch" in plan["fit"]
    # fewer phase-1 epochs than temperatures: 2 epochs of 5 steps, 7 contiguous slices whose sizes differ by at most 1
    plan = kd.annealing_plan(epochs=3, phase2_epochs=1, steps_per_epoch=5, tau_max=7)
    temps = [kd.annealing_temperature(step, plan["phase1_steps"], 7) for step in range(10)]
    sizes = [temps.count(T) for T in range(1, 8)]
    assert temps == sorted(temps) and set(temps) == set(range(1, 8)) and max(sizes) - min(sizes) <= 1
    assert plan["slice_ends"] == [i + 1 for i in range(10) if i == 9 or temps[i + 1] != temps[i]]
    assert "equal slice" in plan["fit"] and plan["phase1_epochs"] == 2
    with pytest.raises(EvalError, match="fewer than the 7 temperatures"):
        kd.annealing_plan(epochs=2, phase2_epochs=1, steps_per_epoch=3, tau_max=7)
    with pytest.raises(EvalError, match=">= 1 epoch in each phase"):
        kd.annealing_plan(epochs=3, phase2_epochs=3, steps_per_epoch=30, tau_max=7)


def test_rail_layer_draws():
    # a 6-layer student has 5 intermediate layers; a 12-layer teacher's intermediate layers are hidden states 1..11
    draws = [kd.rail_layers(e, seed=0, n_teacher=12, n_student=6) for e in range(200)]
    for layers in draws:
        assert len(layers) == 5 and layers == sorted(set(layers)) and all(1 <= i <= 11 for i in layers)
    assert set().union(*draws) == set(range(1, 12))  # every intermediate teacher layer is used, never 0 or 12
    assert len({tuple(d) for d in draws[:5]}) > 1  # redrawn each epoch
    assert draws[3] == kd.rail_layers(3, seed=0, n_teacher=12, n_student=6)  # reproducible
    assert [kd.rail_layers(e, seed=1, n_teacher=12, n_student=6) for e in range(200)] != draws


def small_classifier(n_layer: int, n_embd: int) -> Classifier:
    return Classifier(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=n_layer, n_head=2, n_embd=n_embd)), 2)


def test_rail_term_against_a_direct_computation():
    torch.manual_seed(0)
    student, teacher = small_classifier(3, 8), small_classifier(5, 12)
    cfg = GlueConfig(kd="rail", rail_dim=4, rail_weight=0.45, kd_alpha=0.3, kd_temperature=1.5)  # 0.45 != 1 - 0.3
    loss = kd.KDLoss(cfg, student, teacher)
    loss.layers = [1, 4]  # teacher layers for student layers 1, 2
    hidden = [torch.randn(2, 3, 8) for _ in range(4)]  # embeddings, 2 intermediate layers, final output
    t_hidden = [torch.randn(2, 3, 12) for _ in range(6)]
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    logits, t_logits, labels = torch.randn(2, 2), torch.randn(2, 2), torch.tensor([0, 1])

    def pooled_projection(h, example, weight):  # mean over the real tokens, project, L2-normalise
        n = int(mask[example].sum())
        v = [sum(h[example, i, d].item() for i in range(n)) / n for d in range(h.size(-1))]
        p = [sum(weight[k, d].item() * v[d] for d in range(len(v))) for k in range(weight.size(0))]
        norm = math.sqrt(sum(x * x for x in p))
        return [x / norm for x in p]

    rail = 0.0
    for s_layer, t_layer in ((1, 1), (2, 4)):
        for example in range(2):
            a = pooled_projection(hidden[s_layer], example, loss.student_proj[s_layer - 1].weight)
            b = pooled_projection(t_hidden[t_layer], example, loss.teacher_proj[t_layer - 1].weight)
            rail += sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) / 2 / 2  # summed over dimensions, mean over examples, layers
    ce = -sum(math.log(softmax(r)[y]) for r, y in zip(logits.tolist(), labels.tolist(), strict=True)) / 2
    kl = sum(sum(pt * math.log(pt / ps) for pt, ps in zip(softmax([v / 1.5 for v in tr]), softmax([v / 1.5 for v in sr]), strict=True))
             for sr, tr in zip(logits.tolist(), t_logits.tolist(), strict=True)) / 2 * 1.5**2
    got = loss(logits, labels, hidden, t_logits, t_hidden, mask)
    assert got.item() == pytest.approx(0.7 * ce + 0.3 * kl + 0.45 * rail, rel=1e-5)
    # the trivial solution is closed: shrinking the projections (as weight decay would) leaves the term unchanged,
    # and the projections are trained without weight decay
    before = loss.rail_term(hidden, t_hidden, mask).item()
    with torch.no_grad():
        for p in loss.parameters():
            p.mul_(1e-3)
    assert loss.rail_term(hidden, t_hidden, mask).item() == pytest.approx(before, rel=1e-4)
    groups = param_groups(student, loss, weight_decay=0.01)
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in loss.parameters()} and groups[1]["weight_decay"] == 0.0



def test_rail_collapse_diagnostic_against_a_direct_computation():
    torch.manual_seed(1)
    student, teacher = small_classifier(3, 8), small_classifier(5, 12)
    loss = kd.KDLoss(GlueConfig(kd="rail", rail_dim=4), student, teacher)
    loss.layers = [2, 3]
    hidden = [torch.randn(3, 4, 8) for _ in range(4)]
    t_hidden = [torch.randn(3, 4, 12) for _ in range(6)]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])

    def mean_cosine(vectors):  # over ordered pairs of distinct examples
        cos = [sum(a * b for a, b in zip(vectors[i], vectors[j], strict=True)) for i in range(3) for j in range(3)
               if i != j]
        return sum(cos) / len(cos)

    pairs = [(s.tolist(), t.tolist()) for s, t in loss.rail_pairs(hidden, t_hidden, mask)]
    got = loss.rail_diagnostics(hidden, t_hidden, mask)
    assert got["student_similarity"] == pytest.approx(sum(mean_cosine(s) for s, _ in pairs) / 2, abs=1e-5)
    assert got["teacher_similarity"] == pytest.approx(sum(mean_cosine(t) for _, t in pairs) / 2, abs=1e-5)
    assert got["term"] == pytest.approx(loss.rail_term(hidden, t_hidden, mask).item())
    # collapsed projections: every example maps to the same vector, similarity 1 and a term near 0 on both sides
    with torch.no_grad():
        for proj in (*loss.student_proj, *loss.teacher_proj):
            proj.weight.zero_()
            proj.weight[0, 0] = 1.0
    for h in (*hidden, *t_hidden):
        h[..., 0] = h[..., 0].abs() + 1  # a shared positive first coordinate: the direction every example takes
    collapsed = loss.rail_diagnostics(hidden, t_hidden, mask)
    assert collapsed["student_similarity"] == pytest.approx(1.0) and collapsed["teacher_similarity"] == pytest.approx(1.0)
    assert collapsed["term"] == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def kd_models(shared_data, tmp_path_factory) -> Path:
    """A 4-layer teacher fine-tuned on a learnable SST-2-like task and a 2-layer student truncated from it."""
    root = tmp_path_factory.mktemp("kd")
    data = synthetic_sst2(root / "glue", shared_data)
    teacher = save_small_gpt2(root / "teacher", n_layer=4, seed=1)
    finetune(teacher, "sst2", data, GlueConfig(epochs=4, lr=2e-3, batch_size=16), save=root / "teacher-tuned")
    from train.truncate import truncate

    truncate(GPT.from_pretrained(teacher), [0, 2]).save_pretrained(root / "student")
    save_tokenizer(gpt2_tokenizer(), root / "student")
    return root


def test_rail_gradient_is_of_the_order_of_the_logit_kd_gradient(kd_models):
    """At the start of fine-tuning, with the default weights, the intermediate-layer term moves the student's
    intermediate block about as much as the logit-KD term does (a term 100x weaker would not change training)."""
    tok = gpt2_tokenizer()
    texts, labels, _ = read_tsv(kd_models / "glue" / "SST-2" / "train.tsv", "sst2")
    x, mask, _, _ = next(batches(encode(tok, texts[:16], 32), labels[:16], 16, list(range(16)), tok.eos_token_id))
    teacher = Classifier.load(kd_models / "teacher-tuned", 2).eval()
    with torch.no_grad():
        t_logits, t_hidden = teacher(x, mask)
    for seed in range(3):
        torch.manual_seed(seed)
        student = Classifier(GPT.from_pretrained(kd_models / "student"), 2)
        cfg = GlueConfig(kd="rail", seed=seed)
        loss = kd.KDLoss(cfg, student, teacher)
        loss.start_epoch(0)
        logits, hidden = student(x, mask)
        block = list(student.backbone.transformer.h[0].parameters())  # the student's intermediate layer

        def grad_norm(term):
            return torch.sqrt(sum((g**2).sum() for g in torch.autograd.grad(term, block, retain_graph=True))).item()

        logit_kd = grad_norm(cfg.kd_alpha * kd.kl_distill(logits, t_logits, cfg.kd_temperature))
        rail = grad_norm(cfg.rail_weight * loss.rail_term(hidden, t_hidden, mask))
        assert 0.25 < rail / logit_kd < 4, (seed, rail, logit_kd)


@pytest.mark.parametrize("selection", ["dev_metric", "teacher_mse"])
def test_annealing_finetuning_restarts_phase2_from_the_best_phase1_checkpoint(kd_models, selection):
    cfg = GlueConfig(epochs=3, lr=2e-3, batch_size=16, kd="annealing", annealing_tau_max=7, annealing_phase2_epochs=1,
                     annealing_selection=selection)
    result = finetune(kd_models / "student", "sst2", kd_models / "glue", cfg, teacher_dir=kd_models / "teacher-tuned")
    a = result["annealing"]
    assert a["phase1_epochs"] == 2 and a["phase1_steps"] == 30 and len(a["slice_ends"]) == 7  # 240 examples / 16
    losses, scores = a["val_loss_per_temperature"], a["dev_score_per_temperature"]
    assert len(losses) == 7 and len(scores) == 7
    best = scores.index(max(scores)) if selection == "dev_metric" else losses.index(min(losses))
    assert a["best_temperature"] == best + 1
    # phase 2 starts from the weights that scored best, not from the last phase-1 step
    assert a["phase2_start_val_loss"] == pytest.approx(losses[best], rel=1e-5)
    assert losses[-1] < losses[0]  # the targets approach the teacher's logits
    assert result["teacher"]["dev"] >= 0.9 and not result["teacher"]["finetuned_here"]


def test_rail_finetuning_redraws_teacher_layers_each_epoch(kd_models):
    cfg = GlueConfig(epochs=3, lr=2e-3, batch_size=16, kd="rail", seed=3)
    result = finetune(kd_models / "student", "sst2", kd_models / "glue", cfg, teacher_dir=kd_models / "teacher-tuned")
    draws = result["rail"]["teacher_layers_per_epoch"]
    start, end = result["rail"]["start"], result["rail"]["end"]
    assert start["step"] == 0 and end["step"] == 3 * 15 - 1  # 240 examples / 16 per step, 3 epochs
    assert -1 <= end["student_similarity"] <= 1 and start["term"] >= 0 and end["term"] >= 0
    assert result["rail"]["collapsed"] == (end["student_similarity"] > 0.95 and end["teacher_similarity"] > 0.95)
    assert draws == [kd.rail_layers(e, 3, n_teacher=4, n_student=2) for e in range(3)]
    assert all(len(d) == 1 and 1 <= d[0] <= 3 for d in draws) and result["rail"]["variant"] == "layer-wise"
