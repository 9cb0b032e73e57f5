"""CSV files that the web app hands out, made safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets ("CSV injection"), and some of those cells come
from strangers: an MTurk assignment id such as ``=HYPERLINK("http://x","y")``, a participant id.
Such a text cell gets a leading ``'``, which the spreadsheet shows as text and hides. Numbers
(``-0.5``, ``-1e-3``, ``-inf``) are left alone, so numeric columns stay numbers; study.analysis
writes its own files unchanged, and only what the admin exports passes through here.
"""

import csv
import io
import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_RE = re.compile(r"[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|nan)", re.IGNORECASE)


def safe_cell(value):
    """`value` as text a spreadsheet will not run: a formula-like text cell prefixed with ``'``."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not NUMBER_RE.fullmatch(text):
        return "'" + text
    return text


def csv_text(rows, lineterminator="\n"):
    """CSV text of `rows`, every cell made safe (``\\n`` line ends by default, as pandas writes
    them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def safe_csv(text):
    """CSV `text` with its formula-like text cells neutralised; returned as it was when no cell
    needs it, so the file's quoting and number formatting never change for nothing."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not any(safe_cell(cell) != cell for row in rows for cell in row):
        return text
    return csv_text(rows)
