"""GPT-2, read top to bottom (after nanoGPT), loading and saving Hugging Face GPT-2 checkpoints exactly.

Module names follow Hugging Face's `GPT2LMHeadModel` (transformer.wte, transformer.h.0.attn.c_attn, ...), so
a checkpoint maps one to one; the only difference is that HF stores its `Conv1D` weights as [in, out] and
we use `nn.Linear` ([out, in]), so those four matrices per block are transposed on load and save.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from train import TrainError  # the package's one user-facing error

# HF Conv1D weights: stored transposed relative to nn.Linear
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 1024  # n_positions
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    bos_token_id: int = 50256
    eos_token_id: int = 50256

    def to_hf(self) -> dict:
        """config.json in the form transformers' GPT2Config writes it."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_ctx": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": None,
            "activation_function": "gelu_new",
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": 0.02,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": True,
            "torch_dtype": "float32",
        }

    @classmethod
    def from_hf(cls, hf: dict, source: str = "config.json") -> "GPTConfig":
        if hf.get("model_type") != "gpt2":
            raise TrainError(
                f"{source}: model_type is {hf.get('model_type')!r}; only GPT-2 checkpoints can be loaded here"
            )
        for key in ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd"):
            value = hf.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainError(
                    f"{source}: {key} is {json.dumps(value)}, not a positive whole number; "
                    "use the config.json saved with the weights"
                )
        if hf["n_embd"] % hf["n_head"]:
            raise TrainError(
                f"{source}: n_embd {hf['n_embd']} is not a multiple of n_head {hf['n_head']}; "
                "use the config.json saved with the weights"
            )
        for key in ("resid_pdrop", "layer_norm_epsilon"):
            value = hf.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise TrainError(f"{source}: {key} is {json.dumps(value)}, not a number in [0, 1)")
        for key in ("bos_token_id", "eos_token_id"):
            value = hf.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise TrainError(f"{source}: {key} is {json.dumps(value)}, not a token id")
        if hf.get("activation_function", "gelu_new") != "gelu_new" or hf.get("n_inner") not in (None, 4 * hf["n_embd"]):
            raise TrainError(f"{source}: only the standard GPT-2 block (gelu_new, 4x MLP) is supported")
        return cls(
            vocab_size=hf["vocab_size"],
            block_size=hf["n_positions"],
            n_layer=hf["n_layer"],
            n_head=hf["n_head"],
            n_embd=hf["n_embd"],
            dropout=hf.get("resid_pdrop", 0.0),
            layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-5),
            bos_token_id=hf.get("bos_token_id", 50256) or 0,
            eos_token_id=hf.get("eos_token_id", 50256) or 0,
        )


HEAD_CHUNK_ELEMENTS = 2**21  # logits per slice of the fused head + loss: 8 MB of fp32 ...
HEAD_MIN_ROWS = 256  # ... but at least this many positions, for a large vocabulary


class HeadCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of `hidden @ weight.T` against `targets`, without the [tokens, vocabulary] logits.

    The logits are made a slice of rows at a time and dropped; forward also computes the gradients of the loss
    for `hidden` and `weight` (softmax - one-hot, times the inputs) from each slice, so backward only scales
    them. Same products as autograd's head and loss, but the three logits-sized tensors (logits, log-softmax,
    their gradient) are never held whole: one slice-sized buffer serves every slice, and with an 8k vocabulary
    it is small enough that the allocator keeps it, instead of handing it back to the kernel to be faulted in
    and zeroed again at the next step.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int):
        device_type = hidden.device.type
        dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else weight.dtype
        want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        valid = targets != ignore_index
        # each position's share of the mean; every target ignored: loss 0 and no gradient (no NaN to train on)
        share = valid.float() / valid.sum().clamp(min=1)
        # enough rows that each slice's products read the weight once for a useful amount of arithmetic
        rows = min(hidden.size(0), max(HEAD_MIN_ROWS, HEAD_CHUNK_ELEMENTS // weight.size(0)))
        w = weight.to(dtype)
        slice_buffer = torch.empty(rows, weight.size(0), dtype=dtype, device=hidden.device)  # reused by every slice
        loss = torch.zeros((), device=hidden.device, dtype=torch.float32)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        with torch.autocast(device_type, enabled=False):
            for start in range(0, hidden.size(0), rows):
                h = hidden[start : start + rows].to(dtype)
                t, weights = targets[start : start + rows].clamp(min=0)[:, None], share[start : start + rows]
                logits = torch.mm(h, w.t(), out=slice_buffer[: h.size(0)]).float()  # no copy in fp32
                picked = logits.gather(1, t).squeeze(1)
                peak = logits.amax(dim=-1, keepdim=True)
                probs = logits.sub_(peak).exp_()  # in place of the slice's logits: one exp serves loss and softmax
                total = probs.sum(dim=-1)
                loss += ((total.log() + peak.squeeze(1) - picked) * weights).sum()
                if not want_grad:
                    continue
                probs.mul_((weights / total)[:, None])  # softmax, times the position's share (0 when ignored)
                probs.scatter_add_(1, t, -weights[:, None])  # minus the one-hot target
                probs = probs.to(dtype)
                if grad_hidden is not None:
                    grad_hidden[start : start + rows] = probs @ w
                if grad_weight is not None:
                    if dtype == torch.float32:
                        grad_weight.addmm_(probs.t(), h)
                    else:
                        grad_weight += (probs.t() @ h).float()
        if want_grad:
            ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        return (
            grad_hidden * grad_loss if grad_hidden is not None else None,
            grad_weight * grad_loss if grad_weight is not None else None,
            None,
            None,
        )


class GPTOutput(NamedTuple):
    logits: torch.Tensor
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if key_padding is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            # causal AND the key is a real token; each query may always see itself, so no row is empty
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            mask = (causal & key_padding[:, None, None, :].bool()) | torch.eye(T, dtype=torch.bool, device=x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))  # gelu_new


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), key_padding)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
                wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
                drop=nn.Dropout(cfg.dropout),
                h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
                ln_f=nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon),
            )
        )
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 * n_layer)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_logits: bool = True,
        targets: torch.Tensor | None = None,
    ) -> GPTOutput:
        """`labels` as in Hugging Face (shifted here; logits and loss returned). `targets` as in nanoGPT: the next
        token of each position, already aligned with `input_ids` (-100 ignored); the loss comes without logits
        (None), from the fused head + cross-entropy, which never holds the [batch, time, vocabulary] logits."""
        B, T = input_ids.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than the model's block size {self.config.block_size}")
        pos = torch.arange(T, device=input_ids.device)
        x = self.transformer.drop(self.transformer.wte(input_ids) + self.transformer.wpe(pos))
        hidden = [x] if output_hidden_states else None
        # taken as given (checking it for padding would wait on the device): pass None when nothing is padded,
        # for SDPA's faster causal-only kernels
        key_padding = attention_mask
        blocks = self.transformer.h
        for i, block in enumerate(blocks):
            x = block(x, key_padding)
            if output_hidden_states and i < len(blocks) - 1:
                hidden.append(x)
        x = self.transformer.ln_f(x)
        if output_hidden_states:
            hidden.append(x)  # as in HF: the last hidden state is after the final layer norm
        hidden_states = tuple(hidden) if hidden is not None else None
        if targets is not None:
            loss = HeadCrossEntropy.apply(x.reshape(-1, x.size(-1)), self.lm_head.weight, targets.reshape(-1), -100)
            return GPTOutput(None, loss, hidden_states)
        if not return_logits:  # e.g. a classifier on the hidden states: skip the vocabulary projection
            return GPTOutput(None, None, hidden_states)
        logits = self.lm_head(x)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        return GPTOutput(logits, loss, hidden_states)

    # -- sizes -----------------------------------------------------------------------------------
    def num_parameters(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel() + self.transformer.wte.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward), as in the PaLM appendix / nanoGPT."""
        cfg, T = self.config, seq_len or self.config.block_size
        n_matmul = self.num_parameters(non_embedding=True) + cfg.vocab_size * cfg.n_embd  # the head is a matmul too
        return 6 * n_matmul + 12 * cfg.n_layer * cfg.n_embd * T

    # -- Hugging Face checkpoints ------------------------------------------------------------------
    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in self.state_dict().items():
            if k == "lm_head.weight":
                continue  # tied to wte; HF omits it too
            out[k] = v.t().contiguous() if k.endswith(_CONV1D) else v.contiguous()
        return out

    def save_pretrained(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().float() for k, v in self.hf_state_dict().items()}
        save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
        (directory / "config.json").write_text(json.dumps(self.config.to_hf(), indent=2))

    @classmethod
    def from_pretrained(cls, name_or_dir: str | Path) -> "GPT":
        directory = resolve_checkpoint(name_or_dir)
        try:
            hf_config = json.loads((directory / "config.json").read_text())
        except ValueError as e:
            raise TrainError(
                f"{directory / 'config.json'}: not valid JSON ({e}); restore it from the checkpoint's source"
            ) from None
        cfg = GPTConfig.from_hf(hf_config, str(directory / "config.json"))
        model = cls(cfg)
        model.load_hf_state_dict(read_weights(directory), str(directory))
        return model.eval()  # as transformers does; the training loop switches to train()

    def load_hf_state_dict(self, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
        sd = {(k if k.startswith(("transformer.", "lm_head.")) else f"transformer.{k}"): v for k, v in sd.items()}
        own = self.state_dict()
        wanted = [k for k in own if k != "lm_head.weight"]
        missing = [k for k in wanted if k not in sd]
        if missing:
            raise TrainError(f"{source}: missing weights {missing[:4]}{' ...' if len(missing) > 4 else ''}")
        with torch.no_grad():
            for k in wanted:
                v = sd[k].t() if k.endswith(_CONV1D) else sd[k]
                if v.shape != own[k].shape:
                    raise TrainError(
                        f"{source}: {k} has shape {tuple(v.shape)}, config.json says {tuple(own[k].shape)}: "
                        "the config does not belong to these weights; use the config.json saved with them"
                    )
                own[k].copy_(v)


def resolve_checkpoint(name_or_dir: str | Path) -> Path:
    """A local directory, or a hub name (e.g. `gpt2`) fetched with huggingface_hub when online."""
    path = Path(name_or_dir)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise TrainError(f"{path}: not a Hugging Face checkpoint (no config.json)")
        return path
    if path.exists() or str(name_or_dir).startswith((".", "/", "~")):
        raise TrainError(f"{name_or_dir}: no such checkpoint directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                str(name_or_dir),
                allow_patterns=["config.json", "*.safetensors", "*.json", "*.txt", "merges.txt", "vocab.json"],
            )
        )
    except Exception as e:  # offline, unknown name, ...
        raise TrainError(
            f"{name_or_dir}: not a local directory, and fetching it from the Hugging Face hub failed "
            f"({type(e).__name__}). Pass a directory holding config.json + model.safetensors."
        ) from None


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Weights of a HF checkpoint: safetensors (single or sharded) or pytorch_model.bin (weights only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file as read_safetensors

    def load_file(path: str) -> dict[str, torch.Tensor]:
        try:
            return read_safetensors(path)
        except SafetensorError as e:
            raise TrainError(
                f"{path}: corrupt or truncated safetensors file ({e}); copy or export the checkpoint again"
            ) from None

    if (directory / "model.safetensors").exists():
        return load_file(str(directory / "model.safetensors"))
    index = directory / "model.safetensors.index.json"
    if index.exists():
        sd = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            sd.update(load_file(str(directory / shard)))
        return sd
    if (directory / "pytorch_model.bin").exists():
        try:
            return torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
        except Exception as e:
            raise TrainError(f"{directory / 'pytorch_model.bin'}: cannot be loaded safely ({e})") from None
    raise TrainError(f"{directory}: no model.safetensors or pytorch_model.bin")
