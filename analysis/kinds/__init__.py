"""
kinds - the table of result kinds, in the order of the reports and of
summary.json. Adding a kind: a module in this folder that defines KIND (an
analysis.kind.Kind), and its name in NAMES.
"""

from importlib import import_module

NAMES = ("latency", "frames", "stream", "limits", "sizelat", "rate", "chain", "transport",
         "matrix")

KINDS = tuple(import_module(f"analysis.kinds.{name}").KIND for name in NAMES)

# Every CSV host_writer writes, as the analysis reads it (a test compares
# them with `host_writer --schema`).
SCHEMAS = tuple(schema for kind in KINDS for schema, _ in kind.files
                if schema.program == "host_writer")
# The files a results directory can hold, in the order the messages name them.
RESULT_FILES = tuple(schema.file for kind in KINDS for schema, _ in kind.files)
