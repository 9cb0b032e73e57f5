"""The order of a rater's trials: pure Python, seeded, so every session can be replayed."""

import random


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
