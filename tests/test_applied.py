"""What training applies, not only what it computes: the distillation weights it is given, gradient accumulation,
and the learning rate at each step, and the checkpoint a resume starts from (a data-parallel run killed and resumed:
test_train.py, beside the other torchrun tests). Each run is the real training loop (`python -m train pretrain`'s
`main`, in this process) on a tiny model; the expected values are computed here independently."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from run_helpers import metric_lines, train_cmd, wikitext_token_shards
from train.data import TokenBlocks, sample_indices
from train.model import GPT, GPTConfig
from train.tokenizer import load_tokenizer, save_tokenizer


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("applied")
    tokens, tokenizer = wikitext_token_shards(shared_data, root, vocab_size=400, block_size=16, val_fraction=0.1)
    torch.manual_seed(7)
    teacher = root / "teacher"
    GPT(GPTConfig(vocab_size=400, block_size=32, n_layer=3, n_head=2, n_embd=32)).save_pretrained(teacher)
    save_tokenizer(load_tokenizer(tokenizer), teacher)  # the teacher brings the shards' tokenizer
    return {"tokens": tokens, "teacher": teacher}


def pretrain(capsys, tokens: Path, out: Path, *extra: str) -> str:
    """Run `python -m train pretrain` in this process; its stdout."""
    from train.__main__ import main

    threads = torch.get_num_threads()
    try:
        code = main(train_cmd(tokens, out, *extra)[3:])
    finally:
        torch.set_num_threads(threads)
    out_text, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return out_text


def exported(run: Path) -> dict[str, torch.Tensor]:
    return GPT.from_pretrained(run / "export").state_dict()


def test_a_distillation_step_applies_the_weights_it_is_given(inputs, tmp_path, capsys):
    """One step of `--distill` with alpha_kl, alpha_clm, alpha_cos all different: the trained weights equal one
    AdamW step on alpha_kl * KL * T^2 + alpha_clm * CLM + alpha_cos * (1 - cos), written out here; with two
    weights swapped they do not."""
    from train.config import RunConfig
    from train.loop import make_optimizer

    weights = {"kl": 0.7, "clm": 1.9, "cos": 3.1}
    temperature, lr, warmup = 1.5, 2e-3, 4
    pretrain(capsys, inputs["tokens"], tmp_path / "run", "--max-steps", "1", "--distill",
             "--teacher", str(inputs["teacher"]),
             "--alpha-kl", "0.7", "--alpha-clm", "1.9", "--alpha-cos", "3.1", "--temperature", "1.5", "--lr", "2e-3",
             "--warmup", "4", "--grad-clip", "0", "--batch-size", "4")
    trained = exported(tmp_path / "run")

    tokens = TokenBlocks(inputs["tokens"], "train")
    teacher = GPT.from_pretrained(inputs["teacher"]).eval()
    blocks = tokens.batch(sample_indices(0, len(tokens), 0, 4))
    x, y = blocks[:, :-1], blocks[:, 1:]
    with torch.no_grad():
        t_out = teacher(x, output_hidden_states=True)

    def one_step(w: dict) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)  # the run's seed: the same initial weights
        model = GPT(GPTConfig(vocab_size=400, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0,
                              bos_token_id=tokens.manifest["eos_id"], eos_token_id=tokens.manifest["eos_id"]))
        cfg = RunConfig()
        cfg.optim.lr = lr
        optimizer = make_optimizer(model, cfg)
        s_out = model(x, output_hidden_states=True)
        p_t = F.softmax(t_out.logits / temperature, -1)
        kl = (p_t * (F.log_softmax(t_out.logits / temperature, -1) - F.log_softmax(s_out.logits / temperature, -1)))
        clm = F.cross_entropy(s_out.logits.reshape(-1, s_out.logits.size(-1)), y.reshape(-1))
        cos = 1 - F.cosine_similarity(s_out.hidden_states[-1], t_out.hidden_states[-1], dim=-1)
        loss = w["kl"] * kl.sum(-1).mean() * temperature**2 + w["clm"] * clm + w["cos"] * cos.mean()
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = lr * 1 / warmup  # step 0 of the warmup
        optimizer.step()
        return model.state_dict()

    def max_diff(other: dict) -> float:
        return max((trained[k] - other[k]).abs().max().item() for k in other)

    # (the attention's key bias has a gradient of rounding noise: Adam's first step turns it into up to lr * 1e-2)
    assert max_diff(one_step(weights)) < 2e-5
    assert max_diff(one_step({"kl": 1.9, "clm": 0.7, "cos": 3.1})) > 1e-4
    assert max_diff(one_step({"kl": 0.7, "clm": 1.9, "cos": 0.7})) > 1e-4


def test_grad_accumulation_equals_the_larger_batch_and_the_lr_follows_the_schedule(inputs, tmp_path, capsys):
    """--batch-size 3 --grad-accum 4 trains as --batch-size 12: the same samples, the same averaged gradient, the
    same weights. The learning rate logged and held by the optimizer at each step is the warmup + cosine formula."""
    common = ("--max-steps", "9", "--warmup", "3", "--lr", "2e-3", "--min-lr-ratio", "0.15", "--ckpt-every", "7",
              "--keep-checkpoints", "3", "--eval-every", "100")
    pretrain(capsys, inputs["tokens"], tmp_path / "accum", "--batch-size", "3", "--grad-accum", "4", *common)
    pretrain(capsys, inputs["tokens"], tmp_path / "big", "--batch-size", "12", *common)
    a, b = exported(tmp_path / "accum"), exported(tmp_path / "big")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    small = tmp_path / "small"  # and it is not the same as one micro-batch alone
    pretrain(capsys, inputs["tokens"], small, "--batch-size", "3", *common)
    assert not all(torch.allclose(exported(small)[k], b[k], atol=1e-5) for k in b)
    losses_a = [m["train_loss"] for m in metric_lines(tmp_path / "accum")]
    losses_b = [m["train_loss"] for m in metric_lines(tmp_path / "big")]
    assert losses_a == pytest.approx(losses_b, abs=1e-5)

    def schedule(step: int) -> float:  # step 0, 1, ...: 3 warmup steps to 2e-3, then cosine to 0.15 * 2e-3 at step 9
        if step < 3:
            return 2e-3 * (step + 1) / 3
        return 2e-3 * (0.15 + 0.85 * (1 + math.cos(math.pi * (step - 3) / 6)) / 2)

    logged = {m["step"]: m["lr"] for m in metric_lines(tmp_path / "big")}
    assert sorted(logged) == list(range(1, 10))
    for step in range(9):
        assert logged[step + 1] == pytest.approx(schedule(step), rel=1e-9), step
    assert schedule(0) < schedule(2) == pytest.approx(2e-3) and schedule(8) > 0.15 * 2e-3  # warmup, peak, not yet floor
    from train.checkpoint import load_checkpoint

    for step in (7, 9):  # the rate the optimizer was given for the step before each checkpoint
        state = load_checkpoint(tmp_path / "big" / "checkpoints" / f"step-{step:08d}.pt")
        rates = [g["lr"] for g in state["optimizer"]["param_groups"]]
        assert rates == pytest.approx([schedule(step - 1)] * 2, rel=1e-9)


def test_resume_takes_the_newest_checkpoint(inputs, tmp_path, capsys):
    """A run whose process died after its step-6 checkpoint (of 2, 4, 6 kept) redoes steps 7 and 8 only."""
    run = tmp_path / "run"
    args = ("--max-steps", "8", "--ckpt-every", "2", "--keep-checkpoints", "3", "--eval-every", "100")
    pretrain(capsys, inputs["tokens"], run, *args)
    reference = metric_lines(run), exported(run)
    # the state a kill right after the step-6 checkpoint leaves: no step-8 checkpoint, no export, no summary
    (run / "checkpoints" / "step-00000008.pt").unlink()
    (run / "summary.json").unlink()
    shutil.rmtree(run / "export")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-0000000{s}.pt" for s in (4, 6)] or \
        sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-0000000{s}.pt" for s in (2, 4, 6)]
    said = pretrain(capsys, inputs["tokens"], run, *args)
    assert "(step 6)" in said
    assert [line.split()[1] for line in said.splitlines() if line.startswith("step ")] == ["7/8", "8/8"]
    assert metric_lines(run) == reference[0]
    assert all(torch.equal(exported(run)[k], v) for k, v in reference[1].items())
