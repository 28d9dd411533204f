"""Random search with weight sharing (Li & Talwalkar, UAI 2019), the baseline of equal budget.

Each training batch trains the path of a fresh random genotype in the shared supernet; after each
epoch `candidates_per_epoch` new random genotypes are scored on the validation split with the shared
weights, and the best genotype seen so far is the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from binas.engine.loop import EpochLoop, Meter, accuracy
from binas.engine.strategy import SearchContext, SearchStrategy
from binas.genotype import Genotype
from binas.genotype.encoding import genotype_weights, random_genotype
from binas.optim.builders import build_weight_optimizer, cosine_with_warmup, set_lr
from binas.space.primitives import CELL_KINDS
from binas.strategies.base import build_supernet, register_strategy


@dataclass(frozen=True)
class RandomOptions:
    """Random-search options.

    Attributes:
        candidates_per_epoch: random genotypes scored on the validation split after each epoch.
        eval_batches: validation batches per candidate (None: the whole split).
    """

    candidates_per_epoch: int = 8
    eval_batches: int | None = None


@register_strategy
class RandomSearch(SearchStrategy[RandomOptions]):
    """Random genotypes, trained with shared weights and scored on the validation split."""

    name = "random"
    Config = RandomOptions

    def __init__(self, ctx: SearchContext, options: RandomOptions) -> None:
        super().__init__(ctx, options)
        self.supernet = build_supernet(ctx, binary=bool(ctx.search.binary))
        self.w_opt = build_weight_optimizer(list(self.supernet.parameters()), ctx.search)
        self.best: Genotype | None = None
        self.best_acc = -1.0
        self.evaluated = 0

    def _weights(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        topo, prims = self.supernet.topology, self.supernet.primitives
        return {k: genotype_weights(genotype, k, topo, prims).to(self.device) for k in CELL_KINDS}

    def run_epoch(self, epoch: int, loop: EpochLoop) -> dict[str, float]:
        search = self.ctx.search
        set_lr(self.w_opt, cosine_with_warmup(search.w_lr, search.w_lr_min, epoch, self.num_epochs()))
        steps = self.supernet.topology.steps
        meter = Meter()
        params = list(self.supernet.parameters())
        self.supernet.train()
        for x, y in loop.batches(self.ctx.train_data, stream="train", augment=True, desc=f"epoch {epoch}"):
            logits = self.supernet(
                x, **self._weights(random_genotype(primitives=self.supernet.primitives, steps=steps))
            )
            loss = loop.check(F.cross_entropy(logits, y))
            loop.weight_step(loss, self.w_opt, params, search.grad_clip)
            meter.update(len(y), train_loss=loss.item(), train_acc=accuracy(logits, y)[0])
        accs = []
        for c in range(self.options.candidates_per_epoch):
            candidate = random_genotype(primitives=self.supernet.primitives, steps=steps)
            acc = self._score(candidate, loop, c)
            accs.append(acc)
            self.evaluated += 1
            if acc > self.best_acc:
                self.best, self.best_acc = candidate, acc
        return meter.means() | {"candidate_acc_mean": sum(accs) / max(len(accs), 1), "best_acc": self.best_acc}

    @torch.no_grad()
    def _score(self, genotype: Genotype, loop: EpochLoop, index: int) -> float:
        # Batch statistics during scoring: running BN stats of a weight-sharing supernet mix every path.
        weights = self._weights(genotype)
        correct, total = 0.0, 0
        for x, y in loop.batches(
            self.ctx.val_data,
            stream=f"score-{index}",
            shuffle=False,
            max_batches=self.options.eval_batches,
            show_progress=False,
        ):
            correct += accuracy(self.supernet(x, **weights), y)[0] * len(y)
            total += len(y)
        return correct / max(total, 1)

    def genotype(self) -> Genotype:
        if self.best is None:
            return random_genotype(
                torch.Generator().manual_seed(self.ctx.runtime.seed),
                primitives=self.supernet.primitives,
                steps=self.supernet.topology.steps,
            )
        return self.best

    def stateful(self) -> dict[str, Any]:
        return {"supernet": self.supernet, "w_opt": self.w_opt}

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "best": None if self.best is None else self.best.to_dict(),
            "best_acc": self.best_acc,
            "evaluated": self.evaluated,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best = None if state["best"] is None else Genotype.from_dict(state["best"])
        self.best_acc = float(state["best_acc"])
        self.evaluated = int(state["evaluated"])

    def epoch_record(self) -> dict[str, Any]:
        return {"candidates_evaluated": self.evaluated}
