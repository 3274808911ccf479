"""``python -m jgd``: the command line (see ``jgd.cli``)."""

from jgd.cli import main

raise SystemExit(main())
