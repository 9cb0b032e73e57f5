"""The order of a rater's trials: pure Python, seeded, so every session can be replayed."""

import random
from itertools import pairwise


def trial_order(candidates, seed):
    """Random order of (candidate_pk, image_pk) pairs that never shows one image twice in a row.

    Each step draws an image with probability proportional to its remaining candidates, among
    the images that keep a valid completion possible (no image may need more than every other
    slot). Returns candidate pks; the same seed gives the same order, so sessions can be replayed.
    """
    rng = random.Random(str(seed))
    groups = {}
    for pk, image in sorted(candidates):
        groups.setdefault(image, []).append(pk)
    for pks in groups.values():
        rng.shuffle(pks)

    order, previous = [], None
    total = len(candidates)
    while total:
        counts = {image: len(pks) for image, pks in groups.items() if pks}
        # Only the two largest groups decide whether a valid completion remains possible.
        (top, top_n), *rest = sorted(counts.items(), key=lambda kv: -kv[1])[:2] or [(None, 0)]
        second_n = rest[0][1] if rest else 0

        # After placing an image, no group may need more than every other remaining slot, and
        # that image itself may not come next.
        left = total - 1
        choices = [i for i in counts if i != previous]
        allowed = (
            [
                i
                for i in choices
                if (second_n if i == top else top_n) <= (left + 1) // 2
                and counts[i] - 1 <= left // 2
            ]
            or choices
            or [previous]
        )
        image = rng.choices(allowed, weights=[counts[i] for i in allowed])[0]
        order.append(groups[image].pop())
        previous = image
        total -= 1
    return order


MAX_RETEST_GAP = 10
# Fresh draws tried when the first one cannot keep every rule (only unbalanced or tiny sessions).
RETEST_ATTEMPTS = 8


def retest_count(n_rows, retest_share):
    """How many candidates a session shows twice: the share, clamped to 0..0.5, of `n_rows`."""
    return round(min(max(retest_share, 0.0), 0.5) * n_rows)


def min_retest_gap(session_length):
    """The least distance between a candidate's two showings: a third of the session or ten
    images, whichever is smaller."""
    return min(session_length // 3, MAX_RETEST_GAP)


def session_order(rows, retest_share, seed):
    """A rater's showing order: every rated candidate once, a seeded share of them twice.

    Parameters
    ----------
    rows : list of (candidate_pk, image_pk)
        The rated candidates, each pk once.
    retest_share : float
        The share of candidates shown a second time (test-retest reliability), clamped to
        0..0.5: ``n_retest = round(share * len(rows))``.
    seed : object
        Any value with a stable ``str``; the same rows, share and seed give the same list.

    Returns
    -------
    list of (candidate_pk, repeat)
        In showing order; ``repeat`` is 0 for a candidate's first showing and 1 for its
        retest. The session length is ``L = len(rows) + n_retest``.

    Notes
    -----
    The originals keep their :func:`trial_order` order (same seed). The retested candidates
    are drawn with ``random.Random(f"{seed}:retest")`` among the originals early enough to
    leave room for the gap, and their repeats are inserted one at a time, each into a slot
    drawn uniformly among the valid ones. A slot is valid when

    * the repeat comes at least ``min_gap = min(L // 3, 10)`` positions after its original
      (distance = repeat position - original position, both in the returned list), and
    * neither neighbour shows the repeat's source image, so the same image never comes twice
      in a row, around the repeats as everywhere else.

    Why the gap: a retest a couple of images after its original measures whether the rater
    remembers the score just given (memory, anchoring on the last answer), not whether the
    rating is reliable. A third of the session keeps the pair apart in short sessions; ten
    images of other content already wash out that short-term memory in long ones, and a larger
    gap would only crowd every repeat into the end of the session. Inserting a repeat never
    shortens an earlier pair's distance: it lands outside that pair or between its showings.

    Fallback, so that the function always returns a complete order: when a drawn candidate has
    no valid slot (its image fills the end of the session), an unused candidate that has one
    takes its place. Failing that, the gap gives way before the image rule: the repeat goes
    into the slot farthest from its original that still keeps images apart, or, where no slot
    does, at the very end. Such a draw is retried with the same random stream (up to
    ``RETEST_ATTEMPTS`` draws) and the best one kept: fewest images twice in a row, then the
    smallest total shortfall from ``min_gap``. Balanced sessions (every image with the same
    number of candidates, two images or more) keep both rules at the first draw; only tiny or
    lopsided ones fall back, e.g. a single source image, where no order can keep images apart.
    """
    image_of = dict(rows)
    base = trial_order(rows, seed)
    n_retest = retest_count(len(base), retest_share)
    if not n_retest:
        return [(pk, 0) for pk in base]
    gap = max(min_retest_gap(len(base) + n_retest), 1)
    rng = random.Random(f"{seed}:retest")

    best, best_cost = None, None
    for _ in range(RETEST_ATTEMPTS):
        shown = _insert_retests(base, image_of, n_retest, gap, rng)
        cost = (
            sum(image_of[a] == image_of[b] for (a, _), (b, _) in pairwise(shown)),
            sum(max(gap - d, 0) for d in retest_distances(shown).values()),
        )
        if best_cost is None or cost < best_cost:
            best, best_cost = shown, cost
        if cost == (0, 0):
            break
    return best


def _insert_retests(base, image_of, n_retest, gap, rng):
    """One draw of `session_order`: the originals in `base` order, `n_retest` repeats inserted."""
    # An original at position p <= n - gap keeps the end of the session at least `gap` away,
    # however many repeats come before it. There are always n_retest of them (n_retest <= n/2
    # + 1/2 and gap <= (n + n_retest) / 3); the max() only guards that arithmetic.
    pool = base[: max(len(base) - gap + 1, n_retest)]
    rng.shuffle(pool)
    chosen, spares = pool[:n_retest], pool[n_retest:]
    shown = [(pk, 0) for pk in base]
    images = [image_of[pk] for pk in base]

    def slots(pk, distance):
        # Slot i inserts before shown[i] (i == len(shown) appends), `distance` or more after
        # the original, with neither neighbour showing the same image.
        image, end = image_of[pk], len(shown)
        first = shown.index((pk, 0)) + distance
        return [
            i
            for i in range(first, end + 1)
            if images[i - 1] != image and (i == end or images[i] != image)
        ]

    for pk in chosen:
        valid = slots(pk, gap)
        if not valid:
            for j, spare in enumerate(spares):
                spare_valid = slots(spare, gap)
                if spare_valid:
                    spares[j], pk, valid = pk, spare, spare_valid
                    break
        if valid:
            slot = rng.choice(valid)
        else:
            near = slots(pk, 1)
            slot = near[-1] if near else len(shown)
        shown.insert(slot, (pk, 1))
        images.insert(slot, image_of[pk])
    return shown


def retest_distances(order):
    """{candidate_pk: repeat position - original position} for each retested candidate of a
    :func:`session_order` list."""
    first, distances = {}, {}
    for position, (pk, repeat) in enumerate(order):
        if repeat:
            distances[pk] = position - first[pk]
        else:
            first[pk] = position
    return distances
