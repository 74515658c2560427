"""The GPU paths, tested where they do not need a GPU: device and dtype options, resuming a run under other
execution settings, the checkpoints' RNG states, no host syncs per training step, the distillation KL's memory,
the Makefile's DEVICE reaching every command, and the GPU smoke refusing a machine without CUDA."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from run_helpers import metric_lines, train_cmd, wikitext_token_shards
from train.checkpoint import load_checkpoint, rng_state, set_rng_state
from train.device import parse_device, parse_dtype
from train.distill import kl_term
from train.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tokens(shared_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gpu-paths")
    return wikitext_token_shards(shared_data, root, vocab_size=384, block_size=32, val_fraction=0.25)[0]


# ----------------------------------------------------------------------------- device and dtype options
def test_device_and_dtype_strings():
    assert parse_device("cpu") == CPU and parse_device("cpu:0").type == "cpu"
    for name in ("gpu", "cuda:x", "CUDA", "cuda:-1", ""):
        with pytest.raises(ValueError, match="not a torch device"):
            parse_device(name)
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ValueError, match="no cuda device is available"):
                parse_device(name)
    else:
        with pytest.raises(ValueError, match="this machine has"):
            parse_device(f"cuda:{torch.cuda.device_count()}")
    for name, canonical in (
        ("fp32", "fp32"),
        ("float32", "fp32"),
        ("bf16", "bf16"),
        ("bfloat16", "bf16"),
        ("BF16", "bf16"),
        ("fp16", "fp16"),
        ("float16", "fp16"),
        ("half", "fp16"),
    ):
        assert parse_dtype(name, CPU) == canonical
    assert parse_dtype("auto", CPU) == "fp32"  # unchanged on CPU
    for name in ("fp8", "int8", "bf32", ""):
        with pytest.raises(ValueError, match="use fp32, bf16, fp16 or auto"):
            parse_dtype(name, CPU)


def test_train_refuses_a_wrong_device_or_dtype_in_one_line_before_making_the_run(tokens, tmp_path):
    cases = [
        (["--device", "gpu"], "--device 'gpu': not a torch device"),
        (["--dtype", "float8"], "--dtype 'float8': use fp32, bf16, fp16 or auto"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda:1"], "--device cuda:1: no cuda device is available"))
    for extra, message in cases:
        result = subprocess.run(
            train_cmd(tokens, tmp_path / "run", "--max-steps", "2", *extra), capture_output=True, text=True
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"train: error: {message}"), (
            result.stderr
        )
        assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- resume across machines
def test_a_run_resumes_under_other_execution_settings_but_not_another_shape(tokens, tmp_path):
    """A run copied to another machine continues with other threads, dtype, compile and deterministic settings,
    also from a checkpoint holding a GPU's RNG state (in either format); a change of shape is still refused."""
    made = tmp_path / "made"
    base = ("--max-steps", "6", "--ckpt-every", "3", "--eval-every", "6", "--dropout", "0.1")
    subprocess.run(train_cmd(tokens, made, *base), check=True, capture_output=True)
    assert json.loads((made / "config.json").read_text())["system"]["dtype"] == "auto"

    moved = tmp_path / "moved"
    shutil.copytree(made, moved)
    for later in ("summary.json", "export", "checkpoints/step-00000006.pt"):
        path = moved / later
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    checkpoint = moved / "checkpoints" / "step-00000003.pt"
    state = load_checkpoint(checkpoint)
    state["rng"]["cuda"] = torch.zeros(16, dtype=torch.uint8)  # saved on a GPU rank
    torch.save(state, checkpoint)

    # same settings but the execution ones: the copy continues exactly where the original went
    exact = subprocess.run(
        train_cmd(tokens, moved, *base, "--threads", "1", "--dtype", "float32", "--deterministic"),
        capture_output=True,
        text=True,
    )
    assert exact.returncode == 0, exact.stderr
    assert "resuming from" in exact.stdout and metric_lines(moved) == metric_lines(made)

    state["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 2  # the older format: every visible GPU's state
    torch.save(state, checkpoint)
    for later in ("summary.json", "export", "checkpoints/step-00000006.pt"):
        path = moved / later
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    other = subprocess.run(
        train_cmd(tokens, moved, *base, "--threads", "2", "--dtype", "bf16"), capture_output=True, text=True
    )
    assert other.returncode == 0, other.stderr
    assert metric_lines(moved)[-1]["step"] == 6

    finished = subprocess.run(
        train_cmd(tokens, made, *base, "--threads", "2", "--dtype", "bfloat16", "--compile"),
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0 and "already finished" in finished.stdout, finished.stderr

    reshaped = subprocess.run(train_cmd(tokens, made, *base, "--n-embd", "64"), capture_output=True, text=True)
    assert reshaped.returncode == 2 and "other settings (model.n_embd 32 in the run, 64 now)" in reshaped.stderr, (
        reshaped.stderr
    )


def test_checkpoint_rng_states_touch_only_the_rank_s_own_device(monkeypatch):
    """On a CPU rank nothing of CUDA is read or set (that would open a context on every GPU), and a GPU state in a
    checkpoint is skipped; the CPU, numpy and Python streams come back exactly."""

    def no_cuda(*_, **__):
        raise AssertionError("a CPU rank touched CUDA")

    for name in ("is_available", "get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "init"):
        monkeypatch.setattr(torch.cuda, name, no_cuda)
    torch.manual_seed(5)
    state = rng_state(CPU)
    assert "cuda" not in state
    expected = torch.rand(3)
    for cuda in (torch.zeros(16, dtype=torch.uint8), [torch.zeros(16, dtype=torch.uint8)]):
        set_rng_state({**state, "cuda": cuda}, CPU)
        assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- no host syncs per step
class SyncCounter:
    """Counts the calls that copy a tensor's value to the host (a wait on a GPU) made by the code that computes on the
    device (train/data.py reads host batches before they are copied: not counted)."""

    FILES = {ROOT / "train" / name for name in ("loop.py", "distill.py", "model.py", "device.py", "checkpoint.py")}

    METHODS = ("item", "tolist", "__bool__", "__float__", "__int__")

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self.wrap(name, original))

    def wrap(self, name, original):
        def counted(tensor, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if Path(caller) in self.FILES:
                self.calls.append(f"{name} in {Path(caller).name}:{sys._getframe(1).f_lineno}")
            return original(tensor, *args, **kwargs)

        return counted


def test_no_host_sync_per_training_step(tokens, tmp_path, monkeypatch):
    """A distillation run of 4 and of 12 steps (grad accumulation 2) reads tensors to the host equally often: the
    losses and the distillation terms stay on the device between log steps."""
    from train import config as run_config
    from train.loop import train

    teacher = tmp_path / "teacher"
    GPT(GPTConfig(vocab_size=384, block_size=32, n_layer=2, n_head=2, n_embd=32)).save_pretrained(teacher)
    torch.set_num_threads(1)
    counts = []
    for steps in (4, 12):
        cfg = run_config.RunConfig(output=str(tmp_path / f"run{steps}"))
        cfg.data.tokens = str(tokens)
        cfg.model.init, cfg.model.teacher, cfg.model.n_layer, cfg.model.n_embd, cfg.model.n_head = (
            "scratch",
            str(teacher),
            2,
            32,
            2,
        )
        cfg.optim.batch_size, cfg.optim.grad_accum, cfg.optim.max_steps = 4, 2, steps
        cfg.distill.distill = True
        cfg.log.log_every = cfg.log.eval_every = cfg.log.ckpt_every = 1000
        cfg.log.eval_blocks = 4
        with monkeypatch.context() as patch:
            counter = SyncCounter(patch)
            train(cfg)
        counts.append(counter.calls)
    assert len(counts[0]) == len(counts[1]), counts  # per run, not per step
    assert len(counts[1]) < 12, counts[1]


def test_a_padded_forward_does_not_ask_the_mask(monkeypatch):
    model = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16)).eval()
    x = torch.randint(0, 50, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0
    with monkeypatch.context() as patch:
        counter = SyncCounter(patch)
        with torch.no_grad():
            padded = model(x, attention_mask=mask).logits
    assert counter.calls == []
    with torch.no_grad():
        torch.testing.assert_close(padded[0], model(x[:1]).logits[0])  # an unpadded row: the causal result
        torch.testing.assert_close(padded[1, :5], model(x[1:, :5]).logits[0])


# ----------------------------------------------------------------------------- the distillation KL
def reference_kl(student_logits, teacher_logits, temperature, mask=None):
    """The KL term as one expression (four fp32 batch x tokens x vocabulary tensors kept for the backward pass)."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_token = (t.exp() * (t - s)).sum(-1)
    if mask is not None:
        per_token = per_token[mask.bool()]
    return per_token.mean() * temperature**2


@pytest.mark.parametrize("chunk", [0, 1, 7, 64])
def test_chunked_kl_equals_the_direct_expression(chunk):
    torch.manual_seed(0)
    teacher = torch.randn(3, 11, 50) * 3
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[2, 6:] = 0
    for m in (None, mask):
        for dtype in (torch.float32, torch.bfloat16):
            s_ref = (torch.randn(3, 11, 50) * 2).to(dtype).requires_grad_()
            s_new = s_ref.detach().clone().requires_grad_()
            ref = reference_kl(s_ref, teacher.to(dtype), 2.0, m)
            new = kl_term(s_new, teacher.to(dtype), 2.0, m, chunk_tokens=chunk)
            (3 * ref).backward()
            (3 * new).backward()
            torch.testing.assert_close(new, ref, rtol=1e-6, atol=1e-6)
            tol = 1e-6 if dtype == torch.float32 else 1e-2
            torch.testing.assert_close(s_new.grad, s_ref.grad, rtol=tol, atol=tol)


KL_MEMORY = """
import sys, torch
sys.path[:0] = [{root!r}, {tests!r}]
from test_gpu_paths import reference_kl
from train.distill import kl_term

def memory_kb(field):  # this process's own: ru_maxrss would start from the parent's peak, inherited at exec
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

torch.set_num_threads(1)
student = torch.randn(4, 512, 4096).requires_grad_()  # 8.4M logits: 32 MB in fp32
teacher = torch.randn(4, 512, 4096)
student.grad = torch.zeros_like(student)  # the gradient's own memory counts in neither
kl_term(student[:1, :8], teacher[:1, :8], 2.0).backward()  # warm-up: the allocator's first pages
before = memory_kb("VmRSS")
if sys.argv[1] == "direct":
    loss = reference_kl(student, teacher, 2.0)
else:
    loss = kl_term(student, teacher, 2.0, chunk_tokens=64)
loss.backward()
print((memory_kb("VmHWM") - before) / 1024)
"""


def test_chunked_kl_peak_memory_is_one_logits_tensor():
    """Peak memory of one KL forward + backward beyond the inputs and the gradient (at a 4k vocabulary): the direct
    expression needs about five logits-sized fp32 tensors (measured 160 MB at 32 MB each), the chunked one about two
    (its gradient, and its product with the incoming gradient) and its slices (measured 78 MB)."""
    peaks = {}
    for how in ("direct", "chunked"):
        out = subprocess.run(
            [sys.executable, "-c", KL_MEMORY.format(root=str(ROOT), tests=str(ROOT / "tests")), how],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[how] = float(out.stdout.strip())
    logits_mb = 4 * 512 * 4096 * 4 / 2**20
    assert peaks["chunked"] < 3 * logits_mb, peaks
    assert peaks["direct"] > 1.6 * peaks["chunked"], peaks


# ----------------------------------------------------------------------------- one DEVICE for the whole flow
def test_the_makefile_puts_every_training_and_study_command_on_one_device(tmp_path):
    targets = ["pretrain", "ablation", "compare", "kd-finetune"]
    result = subprocess.run(
        [
            "make",
            "-n",
            "-B",
            *targets,
            "DEVICE=cuda:1",
            "DTYPE=bf16",
            "COMPILE=1",
            f"VENV={tmp_path}/venv",
            f"DATA={tmp_path}/data",
            f"RUNS={tmp_path}/runs",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.replace("\\\n", " ").splitlines()
    pretraining = [line for line in lines if " -m train pretrain " in line]
    studies = [line for line in lines if any(f" -m eval {s} " in line for s in ("ablation", "compare", "kd-study"))]
    assert len(pretraining) == 2 and len(studies) == 3, result.stdout  # teacher, student; three studies
    for line in pretraining + studies:
        assert "--device cuda:1" in line and "--dtype bf16" in line and "--compile" in line, line
    plain = subprocess.run(
        ["make", "-n", "-B", "pretrain", f"VENV={tmp_path}/venv", f"DATA={tmp_path}/data"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert "--device cpu" in plain and "--compile" not in plain


@pytest.mark.parametrize("study", ["ablation", "compare", "kd-study"])
def test_a_study_refuses_a_wrong_device_or_dtype_before_making_its_folder(study, tmp_path, capsys):
    from eval.__main__ import main

    for wrong in (["--device", "cuda:7"], ["--device", "gpu0"], ["--dtype", "fp8"]):
        out = tmp_path / "study"
        assert main([study, "--output", str(out), "--teacher", str(tmp_path / "teacher"), *wrong]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and wrong[1] in err and "Traceback" not in err, err
        assert not out.exists()


def test_a_study_puts_its_runs_and_evaluations_on_its_device_and_dtype():
    from eval.studies.options import Execution

    execution = Execution("cuda:1", "bf16", True)
    assert execution.pretrain_args() == ["--device", "cuda:1", "--dtype", "bf16", "--compile"]
    assert Execution("cpu", "auto").pretrain_args() == ["--device", "cpu", "--dtype", "auto"]
    assert Execution("cpu", "auto").eval_dtype() == "fp32" and Execution("cpu", "bfloat16").eval_dtype() == "bf16"


# ----------------------------------------------------------------------------- the GPU smoke
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without CUDA is told")
def test_gpu_smoke_says_in_one_line_that_there_is_no_gpu(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.gpu_smoke", "--out", str(tmp_path / "smoke")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no CUDA device" in result.stderr and not (tmp_path / "smoke").exists()
