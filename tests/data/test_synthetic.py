"""The synthetic data set: deterministic, configurable, learnable."""

from __future__ import annotations

import torch

from binas.data import load_dataset, make_synthetic


def test_configurable_and_deterministic() -> None:
    ds = make_synthetic(40, num_classes=4, image_size=8, in_channels=1, seed=3)
    assert ds.images.shape == (40, 1, 8, 8) and ds.info.num_classes == 4 and ds.info.in_channels == 1
    assert ds.labels.bincount().tolist() == [10, 10, 10, 10]
    again = make_synthetic(40, num_classes=4, image_size=8, in_channels=1, seed=3)
    assert torch.equal(ds.images, again.images) and torch.equal(ds.labels, again.labels)
    other = make_synthetic(40, num_classes=4, image_size=8, in_channels=1, seed=4)
    assert not torch.equal(ds.images, other.images)


def test_registered_splits_differ() -> None:
    train, test = load_dataset("synthetic", "train"), load_dataset("synthetic", "test")
    assert train.images.shape[1:] == test.images.shape[1:] == (3, 16, 16) and len(train) > len(test)
    assert load_dataset("synthetic", "test", image_size=8).images.shape[1:] == (3, 8, 8)
    # the registered test split is make_synthetic's test stream, not its train stream cut to size ...
    n = len(test)
    assert torch.equal(test.images, make_synthetic(n, split="test").images)
    assert not torch.equal(test.images, make_synthetic(n, split="train").images)
    # ... and the two streams share no sample, not even at equal sizes
    same_size_train = make_synthetic(n, split="train")
    for images in (train.images, same_size_train.images):
        assert torch.cdist(test.images.flatten(1), images.flatten(1)).min() > 1.0
    assert not torch.equal(test.labels, same_size_train.labels)


def test_tiny_net_can_fit() -> None:
    torch.manual_seed(0)
    ds = make_synthetic(200, num_classes=5, image_size=8, seed=1)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    for _ in range(50):  # plain gradient descent: torch.optim's first step costs a second of lazy imports
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(ds.images), ds.labels).backward()
        with torch.no_grad():
            for param in net.parameters():
                param -= 0.1 * param.grad
    test = make_synthetic(100, num_classes=5, image_size=8, seed=1, split="test")
    accuracy = (net(test.images).argmax(1) == test.labels).float().mean()
    assert accuracy > 0.9
