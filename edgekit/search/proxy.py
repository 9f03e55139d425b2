"""The accuracy proxy: a pruned candidate's top-1 on held-out *training* images after BatchNorm
recalibration (and an optional short fine-tune) on other training images. The two image sets are
disjoint (one seeded order, edgekit.data.arrays.TrainOrder); the validation split is kept for the
finalists and the report, so the search never selects on it."""

from __future__ import annotations

import dataclasses

from torch import nn

from edgekit.data.arrays import TrainOrder
from edgekit.data.dataset import Dataset, Split
from edgekit.metrics import topk_accuracy
from edgekit.pruning.iterative import finetune
from edgekit.training import predict, recalibrate_bn


class Proxy:
    def __init__(
        self,
        data: Dataset,
        images: int,
        bn_images: int,
        batch_size: int,
        seed: int,
        finetune_batches: int = 0,
        finetune_lr: float = 1e-3,
    ):
        order = TrainOrder(data, seed, calib=0, held=min(images, len(data.train) // 2))
        self.held: Split = data.train.subset(order.order[: order.held])
        # recalibration and fine-tune see only the rest of the training split
        self.fit_data = dataclasses.replace(data, train=order.rest())
        self.data = data
        self.bn_images, self.batch_size, self.seed = bn_images, batch_size, seed
        self.finetune_batches, self.finetune_lr = finetune_batches, finetune_lr

    @property
    def images(self) -> int:
        return len(self.held)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Recalibrate BatchNorm (pruning changed every statistic downstream) and fine-tune, in place."""
        if self.finetune_batches:
            finetune(
                model,
                self.fit_data,
                self.finetune_batches,
                self.batch_size,
                self.finetune_lr,
                self.seed,
                "search fine-tune",
            )
        recalibrate_bn(model, self.fit_data, self.bn_images, self.batch_size, self.seed)
        return model

    def top1(self, model: nn.Module, split: Split | None = None) -> float:
        """top-1 on the held-out training images (or on `split`)."""
        split = self.held if split is None else split
        logits = predict(model, split, self.data, self.batch_size)
        return round(topk_accuracy(logits, split.labels, ks=(1,))["top1"], 6)

    def val_top1(self, model: nn.Module) -> float:
        return self.top1(model, self.data.val)
