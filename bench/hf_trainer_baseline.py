"""The baseline of bench_train: the same model shape, data and batch through transformers' Trainer."""
from __future__ import annotations

import json
import sys

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

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


def main(tokens_dir: str, out: str, steps: int, batch: int) -> None:
    torch.set_flush_denormal(True)
    blocks = TokenBlocks(tokens_dir, "train")
    cfg = GPT2Config(vocab_size=blocks.vocab_size, n_positions=blocks.block_size, n_embd=256, n_layer=6, n_head=4,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-3,
                             warmup_steps=5, weight_decay=0.1, logging_steps=steps, save_strategy="no", report_to=[],
                             use_cpu=True, dataloader_num_workers=0, disable_tqdm=True)
    result = Trainer(model=model, args=args, train_dataset=Blocks(tokens_dir, steps * batch)).train()
    runtime = result.metrics["train_runtime"]
    print(json.dumps({"tokens_per_s": steps * batch * blocks.block_size / runtime, "runtime_s": runtime}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
