"""The studies: experiments built on the metrics of `eval` (perplexity, glue, kd, data).

One file per study, each a command of `python -m eval` with `add_arguments(parser)` and `run(args)`:
  ablation.py     does cleaning the pre-training data help?          (python -m eval ablation)
  compare.py      truncation vs distillation vs scratch               (python -m eval compare)
  kd_study.py     knowledge distillation during fine-tuning          (python -m eval kd-study)
and what they share, one job per module (no study imports another):
  pretraining.py  the pre-training studies' scales, token shards, runs and their evaluation
  units.py        units of work in folders named by the fingerprint of their settings, cached results
  runs.py         running `python -m train` / `corpus-clean` sub-commands, reading a run's curves
  stats.py        summaries over seeds and confidence intervals
  plots.py        loss curves and bar charts
  provenance.py   the code behind a study's numbers (version, git commit, source fingerprint)
  report.py       Markdown pieces of the reports (tables, comparisons, provenance)
  report_html.py  report.html of a study
"""
