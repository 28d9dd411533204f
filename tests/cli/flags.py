"""Command-line flags that keep CLI tests tiny: 8x8 digits, 64 images, C=4, 3 cells, one thread."""

from __future__ import annotations

#: `binas search` / `binas run`: the supernet and data at test size.
TINY = (
    "--set data.image_size=8 --set data.max_train_samples=64 --set space.channels=4 --set space.layers=3 "
    "--set search.batch_size=32 --set num_threads=1 --device cpu"
).split()
#: `binas run`'s retraining at test size: one epoch of one step.
TINY_TRAIN = (
    "--set train.epochs=1 --set train.two_step=false --set train.net.channels=4 --set train.net.layers=3 "
    "--set train.batch_size=32 --set train.optim.warmup_epochs=0"
).split()
