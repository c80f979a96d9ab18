"""Reports over finished runs and sweeps: tables (CSV, Markdown), plots (PNG) and failed or missing jobs."""

from transferlab.report.aggregate import Group, Stats, group_jobs, metric_names, swept_keys
from transferlab.report.build import Report, ReportError, ReportOptions, build_report
from transferlab.report.collect import Collection, Job, Missing, Sweep, collect
from transferlab.report.plots import read_plot_data

__all__ = [
    "Collection",
    "Group",
    "Job",
    "Missing",
    "Report",
    "ReportError",
    "ReportOptions",
    "Stats",
    "Sweep",
    "build_report",
    "collect",
    "group_jobs",
    "metric_names",
    "read_plot_data",
    "swept_keys",
]
