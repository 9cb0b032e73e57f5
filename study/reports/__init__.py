"""Campaign rows -> the long vote frame -> `study.analysis` -> CSV, plots and the report page."""
