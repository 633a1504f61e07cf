"""The consumers' scripts' entry point: errors reported on one line, as posecli reports them."""

from __future__ import annotations

import sys


def run_main(main) -> None:
    """Exit with ``main()``'s status; an OS, value, runtime or key error prints one ``Error:`` line and exits 1."""
    try:
        sys.exit(main())
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        print(f"Error: {' '.join(str(exc).split())[:600]}", file=sys.stderr)
        sys.exit(1)
