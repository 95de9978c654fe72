"""Runs the command for `python -m interns1_plugin.plan`; the command itself is in `cli`."""

from interns1_plugin.plan.cli import main

raise SystemExit(main())
