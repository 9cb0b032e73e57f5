"""The protocol seam: what a way of judging images (ACR, DCR, paired comparison...) provides.

A campaign names its protocol by a short code (`Campaign.protocol`); `Campaign.kind` is the
registered `Protocol` object behind it. Everything that differs between protocols is a method or
attribute here, implemented once per protocol in `study.protocols` (one module each). The models
call protocols through this registry, never by importing `study.protocols`, so the data path
keeps its one direction: `study.protocols` sits above the models and registers itself when the
app is ready (`study.apps`). docs/architecture.md says what a new protocol must provide.
"""

from __future__ import annotations

from dataclasses import dataclass

_REGISTRY: dict[str, Protocol] = {}


@dataclass(frozen=True)
class Answer:
    """One answer a rater can give: the stored score, its label and its keys on the page."""

    score: int
    label: str
    keys: tuple[str, ...] = ()
    #: What the page prints for it ("A"), when not the score; and how to give it by keyboard.
    mark: str = ""
    hint: str = ""

    @property
    def symbol(self) -> str:
        return self.mark or str(self.score)


class Protocol:
    """The base of every protocol; subclasses override what differs.

    Attributes are plain data the pages and exports read; methods take model instances and
    are called by the models (session design, votes, quality), the rater's pages (payload,
    templates) and the reports (frames, report writer). A method the base leaves unimplemented
    raises NotImplementedError naming the protocol, so a half-written protocol fails loudly.
    """

    code = ""
    label = ""
    #: What the rater is asked, in the consent text's "You will see a series of images and ...".
    task = "rate the quality of each one"
    #: How the report names a method's mean score ("mos", or "dmos" against a reference).
    score_name = "mos"
    #: The analysis the campaign's votes take: "ratings" (study.analysis.write_report) or
    #: "comparisons" (study.analysis.pc_report).
    analysis = "ratings"
    trial_template = "study/trial.html"
    #: A sentence on the live report page under its heading ("" for none).
    report_note = ""
    #: The calibration page's introduction (HTML), and the welcome page's word for its examples.
    calibration_intro = ""
    calibration_preview = ""
    #: The default instructions, and the question above the answers on the trial page.
    instructions = ""
    question = ""

    def answers(self) -> list[Answer]:
        raise NotImplementedError(f"protocol {self.code!r} defines no answers")

    def scale(self) -> list[tuple[int, str]]:
        """(score, label) pairs, in the order the page lists them."""
        return [(a.score, a.label) for a in self.answers()]

    def check_score(self, score) -> str:
        """Why `score` is not an answer of this protocol, or "" when it is one."""
        answers = self.answers()
        if score in [a.score for a in answers]:
            return ""
        low, high = answers[0], answers[-1]
        return (
            f"A score is a whole number from {low.score} ({low.label.lower()}) to {high.score} "
            f"({high.label.lower()})."
        )

    def requirements(self, methods, campaign) -> list[str]:
        """Problems of a campaign design under this protocol ("" list when it can run).

        `methods`: the campaign's methods (a queryset or list of `Method`), passed apart because
        a form checks them before they are saved."""
        return []

    def design_session(self, rater) -> list[dict]:
        """The session's trials in showing order, as `Trial` field dicts (no rater, position)."""
        raise NotImplementedError(f"protocol {self.code!r} designs no sessions")

    def items_per_session(self, campaign, rated: int) -> int:
        """How many judgements one session asks for, before retests, given `rated` candidates."""
        return rated

    def before_show(self, rater, upcoming) -> None:
        """Called before a trial is handed out: fix anything chosen late (e.g. an active pair)."""

    def trial_payload(self, rater, trial, following) -> dict:
        """The protocol's own keys of the trial page's payload (beside src, size, position)."""
        return {}

    def trial_context(self, rater) -> dict:
        """Extra template context of the trial page."""
        return {}

    def serves_reference(self) -> bool:
        """Whether the trial page shows the image's HR reference beside it."""
        return False

    def calibration_label(self, score) -> str:
        """The caption of a calibration example anchored at ``score`` (nearest neighbour 1, HR
        5): the scale's label where the protocol has a 1-5 scale."""
        return dict(self.scale()).get(score, "")

    def calibration_items(self, rater, calibration) -> list[dict]:
        """The calibration page's examples, from (candidate, anchor score) pairs: each alone by
        default (DCR puts its reference beside it)."""
        return [{"candidate": c, "score": score, "reference": None} for c, score in calibration]

    def quality(self, rater) -> dict:
        """The session's quality-control summary (reported, never applied)."""
        raise NotImplementedError(f"protocol {self.code!r} checks no sessions")

    def votes(self, campaign, people_only: bool = False):
        """The campaign's answered trials as the analysis frame this protocol's report takes."""
        raise NotImplementedError(f"protocol {self.code!r} exports no votes")

    def report_votes(self, campaign):
        """:meth:`votes` as the report's analysis reads them; a protocol may return them
        validated already, in less time."""
        return self.votes(campaign)

    def write_report(self, campaign, frame, out_dir, **options) -> dict:
        """Write the report of `frame` (from `votes`) into out_dir; returns name -> path."""
        raise NotImplementedError(f"protocol {self.code!r} writes no report")

    def draw_figures(self, campaign, frame, out_dir, formats) -> dict:
        raise NotImplementedError(f"protocol {self.code!r} draws no figures")

    def summary_table(self, campaign, frame):
        """The per-method table of the admin's "MOS per method" export."""
        raise NotImplementedError(f"protocol {self.code!r} has no summary table")

    def simulate(self, campaign, rater, options) -> dict:
        """{position: score} for every trial of a simulated session `rater` (a pilot)."""
        raise NotImplementedError(f"protocol {self.code!r} has no simulated rater")


def register(protocol: Protocol) -> Protocol:
    """Make `protocol` available to campaigns under its code; returns it (usable as a call on
    an instance at import time). A second registration of a code replaces the first."""
    if not protocol.code or len(protocol.code) > 8:
        raise ValueError(f"a protocol code is 1-8 characters, got {protocol.code!r}")
    _REGISTRY[protocol.code] = protocol
    return protocol


def unregister(code: str) -> None:
    _REGISTRY.pop(code, None)


def protocol_of(code: str) -> Protocol:
    try:
        return _REGISTRY[code]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none (is study.protocols imported?)"
        raise LookupError(f"no protocol {code!r} is registered (known: {known})") from None


def protocol_choices() -> list[tuple[str, str]]:
    """The campaign form's choices: every registered protocol, in registration order."""
    return [(p.code, p.label) for p in _REGISTRY.values()]
