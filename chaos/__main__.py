"""`python -m chaos` runs the chaos-drill CLI."""

from chaos.cli import main

raise SystemExit(main())
