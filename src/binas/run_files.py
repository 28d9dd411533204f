"""The names of the files and folders in a run directory, defined once.

A search directory holds `config.yaml`, `metrics.jsonl`, `checkpoint.pt`, `genotype.json` and
`search_summary.json`; a training directory `config.yaml`, `metrics.jsonl`, `checkpoint.pt`, one model
file per phase (`model.pt` for the final network) and `summary.json`; a `binas run` directory the two as
`search/` and `train/`, plus `genotype.json`, `summary.json` and `plots/`. Every run writes `log.txt`.
"""

from __future__ import annotations

CONFIG_FILE = "config.yaml"
GENOTYPE_FILE = "genotype.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
SUMMARY_FILE = "summary.json"
SEARCH_SUMMARY_FILE = "search_summary.json"
TRAIN_SUMMARY_FILE = "train_summary.json"
LOG_FILE = "log.txt"
SEARCH_DIR = "search"
TRAIN_DIR = "train"
PLOTS_DIR = "plots"
TENSORBOARD_DIR = "tb"
