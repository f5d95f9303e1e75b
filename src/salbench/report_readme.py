"""Number generators used by README.md's statements of results (registered in
``report.NUMBERS`` on import)."""

from __future__ import annotations
