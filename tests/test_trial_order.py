"""A rater's showing order with retests: every repeat far from its original, images kept apart."""

import functools
import random
from itertools import pairwise

import pytest

from study.models.order import (
    min_retest_gap,
    retest_count,
    retest_distances,
    session_order,
    trial_order,
)

SHARES = (0, 0.1, 0.25, 0.5)
# (images, methods): a single image up to the paper's 40 images x 12 methods.
SIZES = [(1, 3), (2, 3), (3, 1), (3, 4), (6, 3), (10, 6), (15, 12), (40, 12)]


def grid(images, methods):
    return [(image * 100 + method, image) for image in range(images) for method in range(methods)]


@functools.cache
def sessions():
    """(images, rows, share, seed, order) over the sizes, shares and a few seeds, built once."""
    return [
        (images, rows, share, seed, session_order(rows, share, seed))
        for images, methods in SIZES
        for rows in [grid(images, methods)]
        for share in SHARES
        for seed in range(3 if images * methods > 100 else 8)
    ]


def images_twice_in_a_row(order, rows):
    image = dict(rows)
    return sum(image[a] == image[b] for (a, _), (b, _) in pairwise(order))


def old_order(rows, share, seed):
    """The order before session_order: trial_order over the originals plus the drawn retests."""
    retested = random.Random(f"{seed}:retest").sample(rows, retest_count(len(rows), share))
    seen, order = set(), []
    for pk in trial_order(rows + retested, seed):
        order.append((pk, int(pk in seen)))
        seen.add(pk)
    return order


def test_it_shows_every_candidate_once_and_exactly_n_retest_of_them_twice():
    for _, rows, share, _, order in sessions():
        n_retest = retest_count(len(rows), share)
        assert len(order) == len(rows) + n_retest
        assert sorted(pk for pk, repeat in order if not repeat) == sorted(pk for pk, _ in rows)
        repeats = [pk for pk, repeat in order if repeat]
        assert len(repeats) == len(set(repeats)) == n_retest


def test_it_keeps_the_originals_in_trial_order():
    for _, rows, _, seed, order in sessions():
        assert [pk for pk, repeat in order if not repeat] == trial_order(rows, seed)


def test_it_shows_each_retest_after_its_original():
    for _, _, _, _, order in sessions():
        assert all(distance > 0 for distance in retest_distances(order).values())


def test_it_places_each_retest_far_from_its_original():
    checked = 0
    for images, _, _, _, order in sessions():
        distances = retest_distances(order)
        if images >= 2 and distances:
            assert min(distances.values()) >= min_retest_gap(len(order)), order
            checked += 1
    assert checked > 50


def test_the_gap_is_a_third_of_the_session_or_ten_images_whichever_is_smaller():
    assert [min_retest_gap(length) for length in (2, 3, 9, 20, 30, 31, 33, 720)] == [
        0,
        1,
        3,
        6,
        10,
        10,
        10,
        10,
    ]


def test_it_never_shows_an_image_twice_in_a_row_when_there_are_two_images_or_more():
    for images, rows, _, _, order in sessions():
        if images >= 2:
            assert images_twice_in_a_row(order, rows) == 0, order


def test_it_gives_the_same_order_for_the_same_seed():
    rows = grid(10, 6)
    assert session_order(rows, 0.25, "c1:r7") == session_order(list(rows), 0.25, "c1:r7")
    assert session_order(rows, 0.25, 42) == session_order(rows, 0.25, "42")


def test_it_gives_different_orders_for_different_seeds():
    rows = grid(10, 6)
    orders = {tuple(session_order(rows, 0.25, seed)) for seed in range(20)}
    assert len(orders) == 20
    # The draw of retested candidates differs too, not only the originals' order.
    drawn = {frozenset(retest_distances(session_order(rows, 0.25, seed))) for seed in range(20)}
    assert len(drawn) > 1


def test_it_clamps_the_share_to_half_the_candidates():
    rows = grid(6, 4)
    assert session_order(rows, -0.3, 1) == [(pk, 0) for pk in trial_order(rows, 1)]
    assert session_order(rows, 0.9, 1) == session_order(rows, 0.5, 1)
    assert len(retest_distances(session_order(rows, 0.9, 1))) == 12


@pytest.mark.parametrize("rows", [[], [(1, 1)], [(1, 1), (2, 1)], grid(1, 12), grid(2, 1)])
def test_it_always_returns_a_complete_order_even_for_tiny_sessions(rows):
    for share in SHARES:
        for seed in range(5):
            order = session_order(rows, share, seed)
            n_retest = retest_count(len(rows), share)
            assert len(order) == len(rows) + n_retest
            distances = retest_distances(order)
            assert len(distances) == n_retest
            assert all(distance > 0 for distance in distances.values())


def test_a_single_image_session_falls_back_to_the_largest_distances():
    # No order can keep one image apart from itself: the repeats go to the end of the session.
    rows = grid(1, 12)
    order = session_order(rows, 0.5, 3)
    assert [repeat for _, repeat in order] == [0] * 12 + [1] * 6
    assert min(retest_distances(order).values()) >= min_retest_gap(len(order))


def test_the_old_shuffle_put_repeats_two_images_apart_and_session_order_never_does():
    # Before: trial_order over originals + retests, so a repeat could follow its original
    # almost at once, which measures the rater's memory rather than their reliability.
    rows = grid(10, 6)
    old = [min(retest_distances(old_order(rows, 0.25, seed)).values()) for seed in range(30)]
    new = [min(retest_distances(session_order(rows, 0.25, seed)).values()) for seed in range(30)]
    assert min(old) <= 2
    assert min(new) >= min_retest_gap(len(rows) + retest_count(len(rows), 0.25)) == 10
