"""The vanishing-gradient study (`python -m specc.study`); see `specc.study.study`."""

from specc.study.study import STUDY, Row, baseline, main, markdown, run_study

__all__ = ["STUDY", "Row", "baseline", "main", "markdown", "run_study"]
