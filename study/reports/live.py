"""The live report from its cache: computed by a worker when votes arrive, read by the page.

A page request reads the votes' version (one aggregate query) and the campaign's ReportCache row.
When the row is of that version it is the answer. Otherwise the request asks for a refresh and
answers with what the row holds (the last report, marked "recomputing") or, before the first
one, a "computing" state that the page polls: no request waits for an analysis longer than
``SRMOS_REPORT_BUDGET_S``. Only with eager Celery (no worker to ask: a demo, the tests) does a
request compute itself, and only when the last computation says this one fits in the budget;
a larger one runs in a thread of the web process while the page polls.

Every computation reads the votes, their count and everything else the report shows in one
transaction snapshot (:func:`snapshot`), and stores the count it reflects with the report. The
tables are stored as soon as they are computed and the figures after them: until they are, the
page shows the new tables and says how many votes the figures above it reflect. Where the worker
may fork, child processes compute parts of the tables (then one of the figures) on the second
core while the worker computes the rest (:class:`Beside`).
"""

import contextlib
import functools
import gc
import logging
import os
import pickle
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from study.analysis import VotesError, plots
from study.models import Campaign, ReportCache
from study.models.report_cache import publish_refresh
from study.reports import frames, page
from study.reports.snapshot import VoteState, snapshot, vote_state

log = logging.getLogger(__name__)

# A computation claimed longer ago than this is presumed dead (a killed worker): another may
# claim it. Longer than any paper-size report takes, shorter than a researcher's patience.
LEASE_SECONDS = 600
# With no computation to go by, the first one is assumed to cost this plus this per vote.
FIRST_GUESS_S, PER_VOTE_S = 0.5, 1e-4


def budget():
    """Seconds a report request may spend on the analysis (well under gunicorn's timeout)."""
    return float(getattr(settings, "SRMOS_REPORT_BUDGET_S", 5.0))


def compute_tables(campaign, beside=False):
    """The report's page context from one snapshot of the campaign's rows, and what draws its
    figures from the same snapshot (the votes and metrics in memory, no query).

    Returns ``(state, fields, draw)``: the :class:`VoteState` read in that snapshot, the
    ReportCache fields of the tables (``body``, ``error``, ``n_votes``), and a function
    returning the figures' fields, or None when there is no report (no votes yet).

    With ``beside`` this process forks to use a second core (:class:`Beside`). A rating report
    computes the method comparisons and the metric panel's stimulus level in two child
    processes while this one screens the raters, and the function then draws the figures from
    what the tables computed, the metric panel's in a child again: every table first, on both
    cores. A paired report's figures are drawn in a child meanwhile, and the function waits for
    them."""
    with snapshot():
        campaign.refresh_from_db(fields=["metrics_changed_at"])  # in the snapshot, as the rest
        state = vote_state(campaign)
        draw = None
        try:
            frame = frames.votes_to_report(campaign)
            options = frames.report_options(campaign)
            split = beside and campaign.kind.analysis == "ratings"
            if split:
                options = {**options, "beside": _in_child, "figure_inputs": {}}
            draw = functools.partial(_figures, campaign, frame, options, state)
            if beside and not split:
                draw = Beside(draw)
            tables = frames.report_tables(campaign, frame, options)
            body = page.context_from_tables(tables)
            body["warnings"] = [f"LR inputs differ. {w}" for w in campaign.lr_warnings()]
        except BaseException as exc:
            _stop(draw)
            if not isinstance(exc, ValueError | VotesError):
                raise
            return state, {"body": None, "error": str(exc), "n_votes": 0}, None
    return state, {"body": body, "error": "", "n_votes": len(frame)}, draw


def may_draw_beside():
    """Whether this process may fork children to compute parts of the report (:class:`Beside`):
    a worker's process (one Python thread: a fork copies no lock another thread holds; never a
    web process's request threads) on a machine with a second core, unless
    ``SRMOS_REPORT_DRAW_BESIDE`` is off. Native thread pools are left to their own fork
    handlers (OpenBLAS has them; the children call no torch); a child that hangs all the same
    is stopped after :data:`DRAW_TIMEOUT_S` and its part computed in the worker."""
    return (
        getattr(settings, "SRMOS_REPORT_DRAW_BESIDE", True)
        and hasattr(os, "fork")
        and (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
    )


_warm_plots = functools.cache(plots.warm_up)

# A child computing longer than this is presumed stuck: stopped, and its work is done in the
# worker's own process (a paper-size report's figures take about a second).
DRAW_TIMEOUT_S = 120


class Beside:
    """Part of a report computed in a forked child process, on the second core, while this
    process computes the rest: the figures while the tables are computed, or parts of the
    tables while this process computes the others. The child has the votes in memory and queries
    nothing; it writes its result to a file (pickled: only this process reads it back) and
    leaves with ``os._exit`` (nothing of the parent's, its database connection above all, is
    closed or flushed by it). Calling the object waits for the child and returns the result;
    should the child fail, hang or not start, the work is done here instead, and the result is
    the same.

    ``what`` names the work in the log; ``nice``: the child's priority below this process's
    (votes and pages come first)."""

    def __init__(self, work, what="the figures", nice=10):
        self.work, self.what, self.nice = work, what, nice
        _warm_plots()  # the child then starts with matplotlib's fonts and caches loaded
        fd, self.path = tempfile.mkstemp(prefix="srmos-beside-", suffix=".pickle")
        os.close(fd)
        # The objects made so far are left out of collections until the child is done: a
        # collection writes to every object it walks, and each page written to is copied
        # between the two processes (the parent's tables took half as long again).
        _freeze()
        try:
            self.pid = os.fork()
        except OSError as exc:  # no memory or no process left for it: done here, after
            log.warning("cannot fork for %s (%s): computed here, after", what, exc)
            self.pid = None
            self._done()
            return
        if self.pid == 0:  # the child
            self._child()
        self._running = True

    def _child(self):
        # No collection in this short life: a collection walks every object the parent made,
        # and each page it touches is copied (twice the drawing's time).
        gc.disable()
        if self.nice:
            with contextlib.suppress(OSError):
                os.nice(self.nice)
        code = 1
        try:
            with open(self.path, "wb") as out:
                pickle.dump(self.work(), out, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        except BaseException:
            log.exception("the child process computing %s failed", self.what)
        finally:
            os._exit(code)

    def _done(self):
        self._running = False
        _unfreeze()
        Path(self.path).unlink(missing_ok=True)

    def __call__(self, timeout=None):
        """The result, once the child is done; should it fail, or still run after ``timeout``
        seconds (default :data:`DRAW_TIMEOUT_S`: stuck), computed here instead."""
        if not self._running:
            return self.work()
        deadline = time.monotonic() + (DRAW_TIMEOUT_S if timeout is None else timeout)
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            while pid == 0 and time.monotonic() < deadline:
                time.sleep(0.001)
                pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): its result is unknown
            pid, status = self.pid, -1
        if pid == 0:
            log.warning("the child process %s still computes %s: here", self.pid, self.what)
            self.cancel()
            return self.work()
        try:
            if status != -1 and os.waitstatus_to_exitcode(status) == 0:
                with open(self.path, "rb") as result:
                    out = pickle.load(result)
                log.info("%s computed beside, in process %s", self.what, self.pid)
                return out
            log.warning("the child process computing %s failed (%s): here", self.what, status)
        except Exception:  # a result that cannot be read back: computed here
            log.exception("the result of %s from process %s is unreadable: here", self.what, pid)
        finally:
            self._done()
        return self.work()

    def cancel(self):
        """Not wanted after all (the rest failed), or a stuck child: stop it."""
        if not self._running:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self._done()


# Children can overlap (a report's parts): collections stay frozen until the last is done.
_frozen = 0


def _freeze():
    global _frozen
    if _frozen == 0:
        gc.freeze()
    _frozen += 1


def _unfreeze():
    global _frozen
    _frozen -= 1
    if _frozen == 0:
        gc.unfreeze()


def _in_child(work, what):
    """``work`` in a child process, for the analysis to split a report: the child is on the way
    to the page as much as this process is, so at the same priority."""
    return Beside(work, what, nice=0)


def _stop(draw):
    """No figures after all: a child drawing them beside the tables is stopped."""
    if isinstance(draw, Beside):
        draw.cancel()


def _figures(campaign, frame, options, state):
    """The figures' ReportCache fields: the page's SVGs of these votes. Figures that cannot be
    drawn are left out (the error logged, with its traceback); the tables stand, and the page is
    not asked to recompute them again and again."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            drawn = frames.draw_report_figures(campaign, tmp, ("svg",), frame, options)
            plots = page.plots_from_files(drawn)
    except Exception:
        log.exception("the figures of campaign %s could not be drawn", campaign.pk)
        plots = []
    return {"figures": plots, "figures_version": state.version, "figures_n_votes": len(frame)}


def compute(campaign):
    """The whole report (tables and figures) of one snapshot: ``(state, fields)``, the fields
    of both."""
    state, fields, draw = compute_tables(campaign)
    return state, {**fields, **(draw() if draw else _no_figures(state))}


def _no_figures(state):
    """The figures' fields of a state with no report (no votes yet)."""
    return {"figures": None, "figures_version": state.version, "figures_n_votes": 0}


def refresh(campaign_id):
    """Compute and store a campaign's report unless another computation holds it; the worker's
    task. Returns whether this call computed. The tables are stored first, so that the page
    shows every number of the new votes while the figures (about half the work) are drawn, in a
    child process on the second core meanwhile where this process may fork
    (:func:`may_draw_beside`); the figures follow, under the same claim. Votes that arrive
    meanwhile set the request flag again, and the claim's end publishes one more refresh for
    them."""
    now = timezone.now()
    free = ReportCache.objects.filter(pk=campaign_id).exclude(
        running_since__gte=now - timedelta(seconds=LEASE_SECONDS)
    )
    if not free.update(running_since=now, requested_at=None):
        if ReportCache.objects.filter(pk=campaign_id).exists():
            return False  # another computation runs; it publishes again for this request
        ReportCache.objects.get_or_create(pk=campaign_id)
        return refresh(campaign_id)
    try:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            return False
        t0 = time.perf_counter()
        state, fields, draw = compute_tables(campaign, beside=may_draw_beside())
        if draw is None:  # no report: no figures either
            fields.update(_no_figures(state))
        try:
            _store(campaign_id, state, fields, time.perf_counter() - t0)
        except BaseException:
            _stop(draw)
            raise
        if draw is not None:
            _store_figures(campaign_id, state, draw(), time.perf_counter() - t0)
    finally:
        ReportCache.objects.filter(pk=campaign_id, running_since=now).update(running_since=None)
    if ReportCache.objects.filter(pk=campaign_id, requested_at__isnull=False).exists():
        publish_refresh(campaign_id)
    return True


def _timed(fn, campaign):
    t0 = time.perf_counter()
    state, fields = fn(campaign)
    return state, fields, time.perf_counter() - t0


def _store(campaign_id, state, fields, seconds):
    """Keep a computed report unless a newer one is stored already (two computations of a
    burst finishing out of order)."""
    row = ReportCache.objects.filter(pk=campaign_id)
    if state.last_vote_at is not None and row.filter(last_vote_at__gt=state.last_vote_at).exists():
        return
    row.update(
        version=state.version,
        last_vote_at=state.last_vote_at,
        computed_at=timezone.now(),
        compute_seconds=seconds,
        computations=F("computations") + 1,
        **fields,
    )


def _store_figures(campaign_id, state, fields, seconds):
    """Keep the figures drawn after their tables, while those tables are the ones stored (a
    newer computation draws its own); ``seconds``: tables and figures together."""
    ReportCache.objects.filter(pk=campaign_id, version=state.version).update(
        compute_seconds=seconds, **fields
    )


# The MOS of the votes now is computed in the request up to this many votes (about 0.15 s at
# the paper's 29,568 on the 2-core VM; it grows linearly): beyond, the page waits for the worker.
NOW_MAX_VOTES = 150_000


def shows_now(campaign, state):
    """Whether a stale report's page also shows the MOS table of the votes now: rating
    protocols (ACR, DCR: their MOS table is one vote read and a few array passes), up to
    NOW_MAX_VOTES."""
    return campaign.kind.analysis == "ratings" and 0 < state.n_answered <= NOW_MAX_VOTES


def now(campaign):
    """The MOS table of every vote so far (mos.csv's section of the page, as the "MOS per
    method" export computes it), with the vote count it reflects; None when there is nothing
    to show. Read in one snapshot, as the full report is."""
    with snapshot():
        state = vote_state(campaign)
        frame = frames.rating_votes(campaign)
    if frame.empty:
        return None
    try:
        table = campaign.kind.summary_table(campaign, frame, frames.method_order(campaign))
    except VotesError:
        return None  # no rating votes yet (calibration or retests only)
    section = page.table_section(page.section_of("mos.csv"), table)
    return {"section": section, "n_votes": state.n_answered}


@dataclass
class Answer:
    """What a report request shows: the row (None before any report), whether it is of the
    current votes, and whether a computation was asked for or is running; `current`: whether
    the page shows the MOS of the votes now beside a stale report (:func:`shows_now`)."""

    cache: ReportCache | None
    state: VoteState
    fresh: bool
    computing: bool
    current: bool = False

    def figures_behind(self):
        """Whether the figures are of other votes than the tables: drawn after them, for the
        moment that takes (:func:`refresh`)."""
        cache = self.cache
        return cache is not None and bool(cache.computed_at) and not _figures_current(cache)

    def version(self):
        """The version of what the page shows: the cached report's (empty before any), the
        figures' while they are behind the tables, and, while the report is stale and the page
        shows the MOS now, the current votes' too, so that the page's poll sees each change."""
        shown = self.cache.version if self.cache is not None and self.cache.computed_at else ""
        if self.figures_behind():
            shown += f"+figures:{self.cache.figures_version}"
        return f"{shown}+now:{self.state.version}" if self.current else shown

    def freshness(self):
        """ "As of 36 votes, 12 s ago; recomputing." and the like, for the page."""
        if self.cache is None or self.cache.computed_at is None:
            return "Computing the report; this page updates when it is ready."
        ago = max(0, int((timezone.now() - self.cache.computed_at).total_seconds()))
        text = f"As of {self.cache.n_votes} votes, computed {ago} s ago"
        if not self.fresh:
            return text + "; new votes arrived, recomputing."
        if self.figures_behind():
            return text + f"; the figures, as of {self.cache.figures_n_votes}, are being redrawn."
        return text + "."

    def context(self):
        """The report body's template context (tables, manifest, warnings, or the error)."""
        if self.cache is None or self.cache.computed_at is None:
            return {"computing": True}
        if self.cache.error:
            return {"error": self.cache.error}
        return dict(self.cache.body or {})

    def plots(self):
        """The figures' template context: the SVGs and, while they are behind the tables, how
        many votes they reflect."""
        if self.cache is None or self.cache.computed_at is None:
            return {"plots": [], "computing": True}
        out = {"plots": list(self.cache.figures or [])}
        if self.figures_behind():
            out["figures_note"] = (
                f"These figures are as of {self.cache.figures_n_votes} votes, the tables above "
                f"as of {self.cache.n_votes}: they are being redrawn."
            )
        return out


def _figures_current(cache):
    return cache.figures_version == cache.version


def answer(campaign, skip=()):
    """The campaign's report for a page request, within the budget (see the module docstring).

    ``skip`` names the row's fields the request does not show (``body``, ``figures``: a poll
    that only asks whether anything changed skips both), so that they are not even decoded."""
    state = vote_state(campaign)
    rows = ReportCache.objects.filter(pk=campaign.pk).defer(*skip)
    cache = rows.first()
    if cache is not None and cache.version == state.version and cache.computed_at is not None:
        drawing = not _figures_current(cache)
        if drawing and not _running(cache):  # the computation stopped between tables and figures
            if _eager():
                cache = _compute_here(campaign, state, cache) or cache
                drawing = not _figures_current(cache)
            else:
                _ask(campaign.pk, cache)
        return Answer(cache, state, fresh=True, computing=drawing)
    if _eager():
        cache = _compute_here(campaign, state, cache) or cache
        fresh = cache is not None and cache.version == state.version
        current = not fresh and shows_now(campaign, state)
        return Answer(cache, state, fresh=fresh, computing=not fresh, current=current)
    _ask(campaign.pk, cache)
    return Answer(cache, state, fresh=False, computing=True, current=shows_now(campaign, state))


def _eager():
    return bool(current_app.conf.task_always_eager)


def _running(cache):
    """Whether a computation holds the report's claim (within its lease)."""
    since = cache.running_since
    return since is not None and since >= timezone.now() - timedelta(seconds=LEASE_SECONDS)


def _ask(campaign_id, cache):
    """Ask a worker for a refresh, unless a request is pending or a computation running."""
    now = timezone.now()
    if cache is None:
        cache, created = ReportCache.objects.get_or_create(
            pk=campaign_id, defaults={"requested_at": now}
        )
        if created:
            transaction.on_commit(lambda: publish_refresh(campaign_id))
            return
    ReportCache.objects.votes_arrived(campaign_id)


def predicted_seconds(cache, state):
    """What computing the report now should take, from the last computation (scaled by the
    votes) or, before any, a first guess by the votes' count."""
    if cache is not None and cache.computations and cache.compute_seconds > 0:
        scale = max(1.0, state.n_answered / max(cache.n_votes, 1))
        return cache.compute_seconds * scale
    return FIRST_GUESS_S + PER_VOTE_S * state.n_answered


_THREADS: dict[int, threading.Thread] = {}
_THREADS_LOCK = threading.Lock()


def _compute_here(campaign, state, cache):
    """Eager Celery: compute in this request when it fits the budget, else in a thread of this
    process (the page polls). Returns the row when this request stored a report."""
    # Inside a transaction (a test's) a thread would not see its rows: compute here.
    if connection.in_atomic_block or predicted_seconds(cache, state) <= budget():
        if cache is None:
            ReportCache.objects.get_or_create(pk=campaign.pk)
        _store(campaign.pk, *_timed(compute, campaign))
        return ReportCache.objects.get(pk=campaign.pk)
    with _THREADS_LOCK:
        running = _THREADS.get(campaign.pk)
        if running is None or not running.is_alive():
            ReportCache.objects.get_or_create(pk=campaign.pk)
            thread = threading.Thread(target=_in_thread, args=(campaign.pk,), daemon=True)
            _THREADS[campaign.pk] = thread
            transaction.on_commit(thread.start)
    return None


def _in_thread(campaign_id):
    try:
        refresh(campaign_id)
    except Exception:
        log.exception("the live report of campaign %s could not be computed", campaign_id)
    finally:
        close_old_connections()
        connection.close()
