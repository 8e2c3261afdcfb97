"""Older home of :mod:`orderlane.cli.bench`, kept so that code importing from here keeps
working."""

from orderlane.cli.bench import bench_app, report_table

__all__ = ["bench_app", "report_table"]
