"""`python -m chaos.reference DIR` writes the generated reference pages into DIR."""

from chaos.reference import main

raise SystemExit(main())
