"""Where CodaBench's compute worker mounts each folder of a step's container: the one spelling of the /app paths.

Both metadata.yaml commands use them (tests/test_worker_paths.py checks the commands against INGESTION_COMMAND
and SCORING_COMMAND) and tools/codabench_run.py maps them onto its temporary folders.
"""
PROGRAM = "/app/program"  # the step's own program (the ingestion or scoring program, or a submission with a command)
INGESTED_PROGRAM = "/app/ingested_program"  # the submission, beside the ingestion program
INPUT_DATA = "/app/input_data"  # the phase's input data (prediction step)
INPUT = "/app/input"  # scoring step: ref/ (reference data) and res/ (the prediction output)
REFERENCE = f"{INPUT}/ref"
PREDICTIONS = f"{INPUT}/res"
OUTPUT = "/app/output"
DATA = "/app/data"
SHARED = "/app/shared"

INGESTION_COMMAND = f"python3 {PROGRAM}/ingestion.py {INPUT_DATA}/ {OUTPUT}/ {PROGRAM} {INGESTED_PROGRAM}"
SCORING_COMMAND = f"python3 {PROGRAM}/score.py {INPUT}/ {OUTPUT}/"
# What docker runs for a command that splits into no words: the image's own CMD. The competition image (Dockerfile:
# FROM python:3.11.7-slim-bookworm) keeps the Python image's, an interpreter that exits at once on the empty stdin.
IMAGE_DEFAULT_COMMAND = "python3"


def legacy_variables(kind: str, is_scoring: bool) -> list[tuple[str, str]]:
    """compute_worker.replace_legacy_metadata_command's table for a container of this kind and step."""
    return [("$input", INPUT_DATA if kind == "ingestion" else INPUT), ("$output", OUTPUT),
            ("$program", PROGRAM), ("$ingestion_program", PROGRAM), ("$hidden", REFERENCE),
            ("$shared", SHARED), ("$submission_program", INGESTED_PROGRAM), ("$tmp", OUTPUT),
            ("$predictions", PREDICTIONS if is_scoring else OUTPUT)]
