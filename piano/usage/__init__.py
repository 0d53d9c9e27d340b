"""Usage and cost: turns, tokens and money per user and per agent, and the ``/usage`` command.

The store keeps one `token_usage` row per model response (with the model that answered) and
one interaction per message; `report` sums them per user and per agent, since 00:00 UTC and
for all time, and prices the tokens with ``[prices."MODEL"]`` (`piano.config.PriceConfig`;
tokens of a model without a price are counted, not priced, and said so). Three views:

- ``/usage`` (`usage`), on every surface: the user's own turns, tokens and cost today and in
  all, with their daily limits (``[limits]``) and when those reset; the owner also gets every
  user's and every agent's totals.
- the web dashboard's usage panel (`report` as JSON, `schemas.usage.UsageReport`);
- the daily summary: yesterday's totals as text (`summary_text`), posted to the owner's chat
  after 00:00 UTC by the `DailySummary` actor (``[usage]``).

The limits themselves are enforced by each conversation before a turn starts
(`piano.agents.ThreadDirectory.refusal`, `piano.config.LimitsConfig.refusal`).
"""

from piano.usage._report import report, report_from, summary_text, usage
from piano.usage._summary import MAX_WAIT, RETRY, USAGE_SUMMARY, DailySummary, Tick

__all__ = [
    "MAX_WAIT",
    "RETRY",
    "USAGE_SUMMARY",
    "DailySummary",
    "Tick",
    "report",
    "report_from",
    "summary_text",
    "usage",
]
