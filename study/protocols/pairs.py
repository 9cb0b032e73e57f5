"""A paired-comparison session's pairs and their order: pure Python, seeded, replayable.

Each image's candidates are paired per the campaign's design (every pair, or `per_image` drawn
at random; an active design holds random pairs' places and study.rating.active chooses each
pair when the page first needs it); the pairs are then ordered as ACR candidates
are (`order.session_order`: never the same image twice in a row, a share shown again at least
min(L // 3, 10) positions later), and which side each version is shown on is drawn per showing,
so a retest shows its pair swapped as often as not.
"""

import random
from itertools import combinations

from study.models.order import session_order


def design_pairs(rows, design, per_image, seed):
    """The (image, pk_a, pk_b) pairs of one session.

    rows: (candidate_pk, image_pk) of the rated candidates. design: "full" (every pair of an
    image's candidates) or "random" (`per_image` pairs per image, drawn without replacement).
    Images with one candidate give no pair."""
    rng = random.Random(f"{seed}:pairs")
    by_image = {}
    for pk, image in sorted(rows):
        by_image.setdefault(image, []).append(pk)
    pairs = []
    for image, pks in sorted(by_image.items()):
        everything = list(combinations(pks, 2))
        if design == "full":
            chosen = everything
        elif design == "random":
            chosen = rng.sample(everything, min(per_image, len(everything)))
        else:
            raise ValueError(f"unknown pair design {design!r}: full or random")
        pairs += [(image, a, b) for a, b in chosen]
    return pairs


def pair_session(pairs, retest_share, seed):
    """The showing order of `pairs`: a list of (pk_left, pk_right, repeat)."""
    rng = random.Random(f"{seed}:sides")
    order = session_order([(i, image) for i, (image, _, _) in enumerate(pairs)], retest_share, seed)
    shown = []
    for i, repeat in order:
        _, a, b = pairs[i]
        shown.append((b, a, repeat) if rng.random() < 0.5 else (a, b, repeat))
    return shown
