"""The challenge's fixed vocabulary: classes, sets, severities and probability column names."""

# WBCBench order (alphabetical); class codes used by the metrics are indices into this tuple.
CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
SETS = ("pristine", "degraded")
# The degraded set mixes all four; "pristine" there means an undegraded copy (re-encoded in the bundle data).
SEVERITIES = ("pristine", "mild", "moderate", "extreme")
PROB_COLUMNS = tuple(f"prob_{c}" for c in CLASSES)
# Predicted code of an image whose predict() failed in a run ingestion accepted (below its error rate). Reports show it
# as such; the figures count it as an answer of STAND_IN (of STAND_IN_FOR_ITSELF when the image is a STAND_IN):
# always wrong, and never better than answering STAND_IN, so an image left unanswered on purpose buys nothing.
# Segmented neutrophils are the commonest white cell of blood, so their precision loses least.
NO_PREDICTION = len(CLASSES)
PREDICTED_NAMES = CLASSES + ("no prediction",)
STAND_IN, STAND_IN_FOR_ITSELF = "SNE", "LY"
