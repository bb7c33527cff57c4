"""CSV export of the console's lists: what a page shows, as a spreadsheet opens it.

Patients' words are exported masked (privacy.py), as the pages show them. A cell that
a spreadsheet would read as a formula (=, +, -, @ first) is prefixed with an apostrophe,
so a patient's message can never run as a formula on a staff member's computer.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """UTF-8 with a byte-order mark (so Excel reads accents right), CRLF line ends, every cell made safe."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()
