"""Our GPT-2 equals transformers' on the same weights; truncation copies the right blocks; KD loss terms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import transformers

from train import TrainError
from train.distill import DistillConfig, cosine_term, distillation_loss, kl_term
import train.model
from train.model import GPT, GPTConfig, GPTOutput
from train.truncate import parse_keep_layers, truncate


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=500, n_positions=32, n_embd=48, n_layer=4, n_head=4, bos_token_id=0, eos_token_id=0
    )
    model = transformers.GPT2LMHeadModel(cfg).eval()
    path = tmp_path_factory.mktemp("hf")
    model.save_pretrained(path)
    return path


def test_logits_and_hidden_states_equal_transformers(hf_dir):
    hf = transformers.AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    ours = GPT.from_pretrained(hf_dir).eval()
    x = torch.randint(0, 500, (3, 17))
    mask = torch.ones_like(x)
    mask[1, 11:] = 0  # right padding
    with torch.no_grad():
        a, b = hf(x, output_hidden_states=True, labels=x), ours(x, output_hidden_states=True, labels=x)
        torch.testing.assert_close(b.logits, a.logits, atol=1e-5, rtol=1e-5)
        assert len(b.hidden_states) == len(a.hidden_states) == 5
        for h_ours, h_hf in zip(b.hidden_states, a.hidden_states, strict=True):
            torch.testing.assert_close(h_ours, h_hf, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(b.loss, a.loss)
        a, b = hf(x, attention_mask=mask), ours(x, attention_mask=mask)
        keep = mask.bool()
        torch.testing.assert_close(b.logits[keep], a.logits[keep], atol=1e-5, rtol=1e-5)


def test_our_export_loads_unchanged_in_transformers(hf_dir, tmp_path):
    ours = GPT.from_pretrained(hf_dir).eval()
    ours.save_pretrained(tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    x = torch.randint(0, 500, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x).logits, atol=1e-5, rtol=1e-5)


def _loss_and_grads(model, x, y, fused):
    model.zero_grad(set_to_none=True)
    if fused:
        loss = model(x, targets=y).loss
    else:
        logits = model(x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_fused_head_gives_autograds_loss_and_gradients(hf_dir, monkeypatch):
    """targets=: the loss and every gradient (the tied embedding's included) as autograd's head + cross-entropy,
    over slices of 7 rows (48 rows: six whole slices and a remainder) with ignored positions among them."""
    monkeypatch.setattr(train.model, "HEAD_CHUNK_ELEMENTS", 0)
    monkeypatch.setattr(train.model, "HEAD_MIN_ROWS", 7)
    model = GPT.from_pretrained(hf_dir)  # eval(): no dropout, so both passes see the same network
    x = torch.randint(0, 500, (3, 16))
    y = torch.randint(0, 500, (3, 16))
    y[0, :5] = -100
    y[2, 9] = -100
    expected_loss, expected = _loss_and_grads(model, x, y, fused=False)
    loss, grads = _loss_and_grads(model, x, y, fused=True)
    torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-6)
    for name, grad in expected.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-5, msg=name)
    with torch.no_grad():  # evaluation: the same loss, no gradient work
        torch.testing.assert_close(model(x, targets=y).loss, expected_loss, atol=1e-6, rtol=1e-6)
    assert model(x, targets=y).logits is None  # the logits are never made whole
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the mixed-precision path: products in bf16, sums in fp32
        bf16_loss = model(x, targets=y).loss
    assert bf16_loss.dtype == torch.float32 and abs(bf16_loss.item() - expected_loss.item()) < 0.05
    everything_ignored = torch.full_like(y, -100)
    loss, grads = _loss_and_grads(model, x, everything_ignored, fused=True)
    assert loss.item() == 0.0 and all(grad.abs().max().item() == 0.0 for grad in grads.values())


def test_pytorch_model_bin_loads_with_weights_only(hf_dir, tmp_path):
    from safetensors.torch import load_file

    (tmp_path / "config.json").write_text((hf_dir / "config.json").read_text())
    torch.save(load_file(str(hf_dir / "model.safetensors")), tmp_path / "pytorch_model.bin")
    x = torch.randint(0, 500, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(GPT.from_pretrained(tmp_path)(x).logits, GPT.from_pretrained(hf_dir)(x).logits)

    # a pickle that runs code is refused, not executed
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(TrainError, match="cannot be loaded safely"):
        GPT.from_pretrained(tmp_path)


def test_bad_checkpoint_paths_give_clear_errors(tmp_path):
    with pytest.raises(TrainError, match="no such checkpoint directory"):
        GPT.from_pretrained(tmp_path / "missing")
    with pytest.raises(TrainError, match="no config.json"):
        GPT.from_pretrained(tmp_path)


def test_keeping_every_layer_reproduces_the_teacher(hf_dir):
    teacher = GPT.from_pretrained(hf_dir).eval()
    student = truncate(teacher, list(range(4))).eval()
    x = torch.randint(0, 500, (2, 12))
    with torch.no_grad():
        assert torch.equal(student(x).logits, teacher(x).logits)


def test_alt_puts_teacher_block_2i_into_student_block_i():
    teacher = GPT(GPTConfig(vocab_size=100, block_size=16, n_layer=12, n_head=2, n_embd=16))
    keep = parse_keep_layers("alt", 12)
    assert keep == [0, 2, 4, 6, 8, 10]
    student = truncate(teacher, keep)
    assert student.config.n_layer == 6
    for i in range(6):
        for (name, p_s), (_, p_t) in zip(
            student.transformer.h[i].named_parameters(), teacher.transformer.h[2 * i].named_parameters(), strict=True
        ):
            assert torch.equal(p_s, p_t), name
    assert torch.equal(student.transformer.wte.weight, teacher.transformer.wte.weight)
    assert torch.equal(student.transformer.wpe.weight, teacher.transformer.wpe.weight)
    assert torch.equal(student.transformer.ln_f.weight, teacher.transformer.ln_f.weight)
    assert student.lm_head.weight is student.transformer.wte.weight  # still tied
    assert (
        student.transformer.h[0].attn.c_attn.weight.data_ptr() != teacher.transformer.h[0].attn.c_attn.weight.data_ptr()
    )


def test_layer_presets_and_errors():
    assert parse_keep_layers("distil", 12) == [0, 2, 4, 7, 9, 11]
    assert parse_keep_layers("top", 12) == [6, 7, 8, 9, 10, 11]
    assert parse_keep_layers("alt", 8) == [0, 2, 4, 6]
    assert parse_keep_layers("bottom", 4) == [0, 1]
    assert parse_keep_layers("0, 3,5", 6) == [0, 3, 5]
    with pytest.raises(TrainError, match="layers 0-11, not \\[12\\]"):
        parse_keep_layers("0,12", 12)
    with pytest.raises(TrainError, match="12-layer teacher"):
        parse_keep_layers("distil", 6)
    with pytest.raises(TrainError, match="expected one of"):
        parse_keep_layers("every-other", 12)


def test_kl_and_cosine_terms_by_hand():
    logits = torch.randn(2, 5, 7)
    assert kl_term(logits, logits, temperature=2.0).abs() < 1e-6
    # two tokens, two classes: student uniform, teacher [e^1, 1] at T=1 -> KL = sum t log(t / 0.5)
    s = torch.zeros(1, 1, 2)
    t = torch.tensor([[[1.0, 0.0]]])
    p = torch.softmax(t, -1)[0, 0]
    expected = (p * (p / 0.5).log()).sum()
    torch.testing.assert_close(kl_term(s, t, temperature=1.0), expected)
    torch.testing.assert_close(kl_term(s, 2 * t, temperature=2.0), expected * 4)  # T^2 scaling, same distributions
    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert cosine_term(h, h).abs() < 1e-6
    torch.testing.assert_close(cosine_term(h, -h), torch.tensor(2.0))
    mask = torch.tensor([[1, 0]])
    assert cosine_term(h, torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]), mask).abs() < 1e-6  # the differing token is masked


def test_distillation_gradients_reach_only_the_student():
    cfg = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16)
    teacher, student = GPT(cfg), GPT(cfg)
    x = torch.randint(0, 50, (2, 8))
    with torch.no_grad():
        t_out = teacher(x, output_hidden_states=True)
    s_out = student(x, labels=x, output_hidden_states=True)
    loss, parts = distillation_loss(s_out, t_out, x, DistillConfig())
    loss.backward()
    assert set(parts) == {"kl", "clm", "cos"}
    torch.testing.assert_close(
        loss.detach(), 5.0 * parts["kl"] + 2.0 * parts["clm"] + 1.0 * parts["cos"], rtol=1e-5, atol=1e-5
    )
    assert all(p.grad is not None for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters())


def test_distilgpt2_loss_against_a_direct_computation():
    """5 * KL(T=2) * T^2 + 2 * CLM + 1 * cosine on fixed tensors, the padded position left out of KL and cosine."""
    s_logits = [[[1.0, -0.5, 2.0], [0.3, 0.3, -1.2], [4.0, 0.0, 0.0]]]
    t_logits = [[[2.5, 0.0, -1.0], [-0.4, 1.1, 0.2], [0.0, 0.0, 9.0]]]
    s_hidden = [[[1.0, 2.0], [0.5, -1.0], [3.0, 3.0]]]
    t_hidden = [[[2.0, 1.0], [1.0, 1.0], [-3.0, 3.0]]]
    mask = [[1, 1, 0]]
    clm = 1.7  # the student's causal-LM loss, computed by the training loop
    T = 2.0

    def softmax(row):
        e = [math.exp(v / T) for v in row]
        return [v / sum(e) for v in e]

    kept = [i for i in range(3) if mask[0][i]]
    kl = sum(
        sum(p * math.log(p / q) for p, q in zip(softmax(t_logits[0][i]), softmax(s_logits[0][i]), strict=True))
        for i in kept
    ) / len(kept)
    cos = sum(
        1
        - sum(a * b for a, b in zip(s_hidden[0][i], t_hidden[0][i], strict=True))
        / (math.hypot(*s_hidden[0][i]) * math.hypot(*t_hidden[0][i]))
        for i in kept
    ) / len(kept)
    expected = 5.0 * kl * T**2 + 2.0 * clm + 1.0 * cos

    student = GPTOutput(torch.tensor(s_logits), torch.tensor(clm), (torch.tensor(s_hidden),))
    teacher = GPTOutput(torch.tensor(t_logits), None, (torch.tensor(t_hidden),))
    total, parts = distillation_loss(student, teacher, None, DistillConfig(), attention_mask=torch.tensor(mask))
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert parts["kl"].item() == pytest.approx(kl * T**2, rel=1e-5) and parts["cos"].item() == pytest.approx(
        cos, rel=1e-5
    )
