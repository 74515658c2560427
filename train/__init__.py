"""train: tokenizer, token shards, GPT-2 with layer truncation, distillation, the training loop."""
