"""The view model the terminal (``render.py``) and the HTML page (``html.py``) both show.

Every label an operator reads is decided here, once, from the report's typed records
(``records.py``): a check's state (``unhealthy (2)``), clocks and durations, an action's mark
(``restart uw-daemon ✓``; ``would restart uw-daemon`` for a dry run's plan), the line next to each
outcome, which columns a command's recap has, a host's timeline in the order things happened,
its notices, tables and check output. The renderers only choose the markup, so the two views
cannot disagree about what happened or what it is called.

- ``labels``: the words and marks (states, clocks, results, outcomes, phrases);
- ``timeline``: a host's phases, checks and actions in order;
- ``excerpt``: a check's output reduced to its matched lines and a bounded tail;
- ``recap``: a run at a glance; ``host``: one host's page.

Text in the model is as the hosts sent it: each renderer makes it safe for its medium
(``labels.clean`` makes control characters visible; the page then HTML-escapes).
"""

from .excerpt import TAIL_LINES, OutputExcerpt, OutputLine, output_excerpt
from .host import HostPage, host_page
from .labels import EXIT_CODES_HELP, RESULT_MARKS, Span, action_phrase, clean, recap_reason
from .recap import Recap, RecapRow, recap
from .timeline import TimelineRow, timeline

__all__ = [
    "EXIT_CODES_HELP",
    "RESULT_MARKS",
    "TAIL_LINES",
    "HostPage",
    "OutputExcerpt",
    "OutputLine",
    "Recap",
    "RecapRow",
    "Span",
    "TimelineRow",
    "action_phrase",
    "clean",
    "host_page",
    "output_excerpt",
    "recap",
    "recap_reason",
    "timeline",
]
