"""Named studies (``rso report STUDY``): the course project's experiments, run and written up as a folder.

A study is a list of runs built from one base config: the course project's batch-size sweep, its model
comparison, and RSO against SGD at equal forward-pass budgets. :func:`run_study` trains them one after
another (each driven by :func:`rso_engine.driving.drive`, with a progress reporter the CLI supplies) and
writes into one folder:

- ``report.md``: what was run, on which data and machine, and a table laid out like the course
  project's (model | batch | time (s) | test loss | test accuracy) with the course project's own numbers
  side by side where it measured the same model and batch size, then the details of every run;
- ``results.csv``: one row per run (the columns of :data:`RESULT_FIELDS`);
- ``histories.json``: every run's config and per-cycle history;
- ``config.json``: the study, its options, the base config and each run's config;
- ``*.png`` and ``*.svg``: test accuracy/loss against cycles and against forward-pass samples, and
  for a batch-size study accuracy and time against the batch size.

"time (s)" is the training compute time (evaluation excluded) that the trainers measure.

Modules: :mod:`.course` (the course project's numbers), :mod:`.studies` (the studies and their plans),
:mod:`.results` (a run's and a study's results), :mod:`.running` (training a study), :mod:`.tables`,
:mod:`.markdown`, :mod:`.figures` and :mod:`.writing` (the folder).
"""

from .course import COURSE_RESULTS, MODEL_LABELS, course_result, model_label
from .figures import batch_sweep_plot
from .results import RESULT_FIELDS, RunResult, StudyResult
from .running import ProgressFactory, run_study, run_summary, train_study
from .studies import STUDIES, Study, StudyError, get_study, plan_runs, study_base
from .tables import course_table
from .writing import write_study

__all__ = [
    "COURSE_RESULTS",
    "MODEL_LABELS",
    "RESULT_FIELDS",
    "STUDIES",
    "ProgressFactory",
    "RunResult",
    "Study",
    "StudyError",
    "StudyResult",
    "batch_sweep_plot",
    "course_result",
    "course_table",
    "get_study",
    "model_label",
    "plan_runs",
    "run_study",
    "run_summary",
    "study_base",
    "train_study",
    "write_study",
]
