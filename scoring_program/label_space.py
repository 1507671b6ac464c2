"""The challenge's fixed vocabulary: classes, sets, severities and probability column names."""

# WBCBench order (alphabetical); class codes used by the metrics are indices into this tuple.
CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
SETS = ("pristine", "degraded")
# The degraded set mixes all four; "pristine" there means an undegraded copy (re-encoded in the bundle data).
SEVERITIES = ("pristine", "mild", "moderate", "extreme")
PROB_COLUMNS = tuple(f"prob_{c}" for c in CLASSES)
# Predicted code of an image whose predict() failed in a run ingestion accepted (below its error rate):
# wrong for its own class, a false positive for none.
NO_PREDICTION = len(CLASSES)
PREDICTED_NAMES = CLASSES + ("no prediction",)
