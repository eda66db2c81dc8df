"""ARC's services on top of the scheduler: credits (mybalance) and storage quotas (myquota).

The controller-side parts are controller plugins (``credits.CreditsPlugin``,
``quota.QuotaPlugin``); the user commands in ``orchestrator.commands`` only
format what the controller answers.
"""

from __future__ import annotations
