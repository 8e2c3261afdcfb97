"""Crash trials against the fake KIS venue in its own process: ``orderlane chaos crash``.

An engine process is killed with SIGKILL at random moments and at aimed points (between the
SUBMITTING commit and the send, between the venue's acceptance and the answer's commit, inside a
group commit); after each kill a new engine recovers on the same database and the signals not
acknowledged are executed again. The venue, which outlives every engine, is the witness: after
each trial the journal must hold exactly one order per signal, the venue at most one, the
journal's fills and positions must be the venue's, and no order may be left open without a
reason.
"""

from orderlane_kis.chaos.plan import AIMED_POINTS, KILL_POINTS, plan_trial
from orderlane_kis.chaos.trials import CrashReport, CrashTrials

__all__ = ["AIMED_POINTS", "KILL_POINTS", "CrashReport", "CrashTrials", "plan_trial"]
