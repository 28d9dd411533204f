"""Detection loaders: VOC and COCO layouts on generated files, the digits canvases, collate and flips."""

from __future__ import annotations

import pytest
import torch

from binas.data.coco import load_coco
from binas.data.detection import collate_detection, hflip_batch
from binas.data.detection_sets import load_detection_dataset
from binas.data.digits_detection import DIGITS_CANVAS, DigitsDetection, make_canvases
from binas.data.voc import VOC_CLASSES, load_voc
from binas.errors import DataError, RegistryError


def test_voc_boxes_are_zero_based_scaled_and_difficult_kept(voc_root):
    data = load_voc("trainval", data_dir=str(voc_root), image_size=20)
    assert len(data) == 2 and data.info.num_classes == 20
    image, target = data[0]
    assert image.shape == (3, 20, 20)
    # 40x20 -> 20x20: x halves, y stays; VOC (1, 1, 20, 10) is 0-based (0, 0, 20, 10)
    assert torch.allclose(target["boxes"], torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 10.0, 20.0, 20.0]]))
    assert target["labels"].tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("person")]
    assert target["difficult"].tolist() == [False, True]
    assert len(load_voc("test", data_dir=str(voc_root / "VOCdevkit" / "VOC2007"), image_size=20)) == 1


def test_voc_errors_name_the_file(voc_root, tmp_path):
    bad = voc_root / "VOCdevkit/VOC2007/Annotations/000002.xml"
    bad.write_text("<annotation><object>")
    with pytest.raises(DataError, match="000002.xml"):
        load_voc("trainval", data_dir=str(voc_root))
    with pytest.raises(DataError, match="no PASCAL VOC data"):
        load_voc("trainval", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="val.txt"):
        load_voc("val", data_dir=str(voc_root))


def test_coco_categories_become_contiguous_labels_and_crowds_are_flagged(coco_root):
    data = load_coco("val", data_dir=str(coco_root), image_size=20)
    assert data.info.class_names == ("three", "seven")
    image, target = data[0]
    assert image.shape == (3, 20, 20)
    # 20x10 -> 20x20: y doubles
    assert torch.allclose(target["boxes"], torch.tensor([[2.0, 2.0, 10.0, 10.0], [10.0, 10.0, 20.0, 20.0]]))
    assert target["labels"].tolist() == [1, 0] and target["difficult"].tolist() == [False, True]
    assert data[1][1]["boxes"].shape == (0, 4)


def test_coco_errors_name_the_file(coco_root):
    path = coco_root / "annotations" / "instances_val2017.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="instances_val2017.json"):
        load_coco("val", data_dir=str(coco_root))
    path.write_text('{"images": []}')
    with pytest.raises(DataError, match="not a COCO instances file"):
        load_coco("val", data_dir=str(coco_root))
    with pytest.raises(DataError, match="instances_train2017.json"):
        load_coco("train", data_dir=str(coco_root))


def test_unknown_detection_data_set_is_a_registry_error():
    with pytest.raises(RegistryError, match="digits-detection"):
        load_detection_dataset("mnist-detection", "train")


def test_digits_canvases_are_deterministic_and_boxes_hold_the_digits():
    images, annotations = make_canvases("test", DIGITS_CANVAS, 40)
    again, same = make_canvases.__wrapped__("test", DIGITS_CANVAS, 40)
    assert torch.equal(images, again) and annotations == same
    prefix, first = make_canvases("test", DIGITS_CANVAS, 10)  # max_images: the first images of the full split
    assert torch.equal(prefix, images[:10]) and first == annotations[:10]
    for image, objects in zip(images, annotations):
        assert 1 <= len(objects) <= 4
        mask = torch.zeros_like(image[0], dtype=torch.bool)
        for x1, y1, x2, y2, digit in objects:
            assert 12 <= x2 - x1 == y2 - y1 <= 20 and 0 <= x1 and x2 <= DIGITS_CANVAS and 0 <= digit <= 9
            assert not mask[y1:y2, x1:x2].any()  # no two boxes overlap
            mask[y1:y2, x1:x2] = True
        assert image[0][~mask].abs().max() == 0  # ink only inside the boxes
    train_images, _ = make_canvases("train", DIGITS_CANVAS, 40)
    assert not torch.equal(train_images, images)


def test_collate_and_flip_keep_boxes_on_the_same_pixels():
    data = DigitsDetection("test", num_images=4)
    assert not data.info.hflip  # a flipped digit is another digit
    x, targets = collate_detection([data[i] for i in range(4)])
    assert x.shape == (4, 3, 64, 64) and len(targets) == 4
    flipped, moved = hflip_batch(x, targets, torch.Generator().manual_seed(0))
    for i in range(4):
        for (a, b, c, d), (p, q, r, s) in zip(targets[i]["boxes"].int().tolist(), moved[i]["boxes"].int().tolist()):
            assert abs(float(x[i, :, b:d, a:c].sum() - flipped[i, :, q:s, p:r].sum())) < 1e-3
