"""saftool: a toolkit for studying safety tuning of language models.

Stages (each a library module with a thin CLI command of the same name):
gen -> mix -> train -> infer -> judge -> report, glued together by `run`.
"""

__version__ = "0.1.0"
