"""The challenge's class codes and test-set names, as the ingestion writes them (one owner in this folder).

A copy of scoring_program/label_space.py's CLASSES and SETS (each program folder is self-contained);
tests/test_owners.py compares them.
"""

CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
SETS = ("pristine", "degraded")  # the order of predictions.csv's rows and of the run
