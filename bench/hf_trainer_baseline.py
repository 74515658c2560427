"""The baseline of bench_train: the same model shape, data and batch through transformers' Trainer.

    python -m bench.hf_trainer_baseline TOKENS OUT STEPS BATCH N_LAYER N_EMBD N_HEAD

Prints {"tokens_per_s": ...} over steps 2..STEPS (the first step's warm-up left out, as in our loop's log).
"""

from __future__ import annotations

import json
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

from train.data import TokenBlocks, sample_indices


class Blocks(torch.utils.data.Dataset):
    def __init__(self, tokens_dir: str, n: int, seed: int = 0):
        self.blocks = TokenBlocks(tokens_dir, "train")
        self.order = sample_indices(seed, len(self.blocks), 0, n)

    def __len__(self):
        return len(self.order)

    def __getitem__(self, i):
        ids = torch.from_numpy(self.blocks.block(self.order[i])[:-1].astype("int64"))
        return {"input_ids": ids, "labels": ids}


class StepClock(TrainerCallback):
    """The time at the end of each optimizer step."""

    def __init__(self):
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def main(tokens_dir: str, out: str, steps: int, batch: int, n_layer: int, n_embd: int, n_head: int) -> None:
    torch.set_flush_denormal(True)
    blocks = TokenBlocks(tokens_dir, "train")
    cfg = GPT2Config(
        vocab_size=blocks.vocab_size,
        n_positions=blocks.block_size,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=1e-3,
        warmup_steps=5,
        weight_decay=0.1,
        logging_steps=steps,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    clock = StepClock()
    Trainer(model=model, args=args, train_dataset=Blocks(tokens_dir, steps * batch), callbacks=[clock]).train()
    tokens = (steps - 1) * batch * blocks.block_size
    print(json.dumps({"tokens_per_s": tokens / (clock.ends[-1] - clock.ends[0])}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8]))
