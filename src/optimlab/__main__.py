"""``python -m optimlab`` runs the command-line interface."""

from optimlab.cli import main

raise SystemExit(main())
