"""The report of an exploration range: one self-contained HTML page with its plots, for
the staging dry run and for production (docs/report.md).

``write_report`` is the entry point; the package keeps I/O (``data``), statistics
(``stats``), the success criteria (``criteria``), the plots (``plots``) and the page
(``page``) apart. Importing the package stays cheap (the settings import the criteria):
the entry point is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bandit_pipeline.report.build import Report, ReportError, write_report

__all__ = ["Report", "ReportError", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bandit_pipeline.report import build

        return getattr(build, name)
    raise AttributeError(name)
