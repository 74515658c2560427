"""eval: perplexity, GLUE fine-tuning, the cleaning ablation and the compression comparison."""
