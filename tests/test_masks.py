"""Masks: dilation, hole regions for the crop strategy, random training and benchmark masks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgfix import masks


def test_dilate_grows_by_exactly_px():
    hole = np.zeros((21, 21), bool)
    hole[10, 10] = True
    grown = masks.dilate(hole, 3)
    assert grown.sum() == 49 and grown[7:14, 7:14].all()
    assert masks.dilate(hole, 0).sum() == 1
    assert masks.dilate(hole, 12).all()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 70), st.integers(1, 70), st.integers(0, 20),
    st.lists(st.tuples(st.integers(0, 69), st.integers(0, 69), st.integers(1, 9)), max_size=6),
)  # fmt: skip
def test_hole_regions_cover_every_hole_pixel_once(h, w, margin, blobs):
    hole = np.zeros((h, w), bool)
    for y, x, r in blobs:
        hole[y % h : y % h + r, x % w : x % w + r] = True
    boxes = masks.hole_regions(hole, margin)
    cover = np.zeros((h, w), int)
    for top, left, bottom, right in boxes:
        assert 0 <= top < bottom <= h and 0 <= left < right <= w
        cover[top:bottom, left:right] += 1
    assert cover.max(initial=0) <= 1
    assert (cover[hole] == 1).all()


def test_far_apart_holes_give_separate_small_regions():
    hole = np.zeros((3000, 4000), bool)
    hole[100:120, 200:260] = True
    hole[2500:2600, 3500:3550] = True
    boxes = masks.hole_regions(hole, 32)
    assert len(boxes) == 2
    assert all((b[2] - b[0]) * (b[3] - b[1]) < 300 * 300 for b in boxes)
    sized = masks.hole_regions(hole, lambda h, w: min(h, w))
    assert sorted(b[2] - b[0] for b in sized) == [32 + 2 * 32, 112 + 2 * 64]


@pytest.mark.parametrize("kind", masks.MASK_KINDS)
def test_random_masks_are_seeded_and_bounded(kind):
    a = masks.random_mask(256, 256, kind, np.random.default_rng(5))
    b = masks.random_mask(256, 256, kind, np.random.default_rng(5))
    assert a.dtype == bool and a.shape == (256, 256)
    np.testing.assert_array_equal(a, b)
    assert 0 < a.mean() <= 0.5


def test_families_grow_from_thin_to_thick_strokes():
    def mean_width(kind):
        rng = np.random.default_rng(0)
        ratios = []
        for _ in range(20):
            m = masks.random_mask(256, 256, kind, rng)
            inner = m.copy()
            inner[1:] &= m[:-1]
            inner[:-1] &= m[1:]
            inner[:, 1:] &= m[:, :-1]
            inner[:, :-1] &= m[:, 1:]
            edge = m & ~inner
            ratios.append(m.sum() / max(edge.sum(), 1))
        return np.mean(ratios)

    assert mean_width("thin") < mean_width("medium") < mean_width("thick")


def test_centered_box_area():
    box = masks.centered_box(200, 300)
    assert abs(box.mean() - 0.25) < 0.01
    assert box[100, 150] and not box[0, 0]


def test_training_bank_mixes_families_and_sizes():
    bank = masks.training_masks(60, 64, seed=3)
    assert bank.shape == (60, 64, 64) and bank.dtype == np.uint8
    areas = bank.reshape(60, -1).mean(1)
    assert (areas > 0).all() and areas.min() < 0.15 and areas.max() > 0.3
    np.testing.assert_array_equal(bank, masks.training_masks(60, 64, seed=3))


def test_lama_parameters_follow_the_image_size():
    thin256, s256 = masks.family_for("thin", 256)
    thin512, s512 = masks.family_for("thin", 512)
    assert (thin256.max_strokes, thin256.max_width, s256) == (50, 10, 1.0)
    assert (thin512.max_strokes, thin512.max_width, s512) == (70, 20, 1.0)
    assert masks.family_for("thick", 300)[0] is masks.FAMILIES["thick"]
    assert masks.family_for("thick", 1024) == (masks.FAMILIES_512["thick"], 2.0)
    # A 512 px thin mask draws the 512 set: the same draws as the 512 set at scale 1 ...
    fam = masks.FAMILIES_512["thin"]
    drawn = masks._draw(512, 512, fam, 1.0, np.random.default_rng(3))
    assert 0 < drawn.mean() <= fam.max_area
    np.testing.assert_array_equal(
        masks.random_mask(512, 512, "thin", np.random.default_rng(3)), drawn
    )
    # ... while an explicit scale keeps the 256 set (the training masks rely on it).
    scaled = masks.random_mask(512, 512, "thin", np.random.default_rng(3), scale=2.0)
    assert not np.array_equal(scaled, drawn)
