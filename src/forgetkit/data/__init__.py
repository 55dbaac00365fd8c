"""Data: question-answer records and what makes them.

* ``records.py``: ``QARecord`` (question, answer, subject, meta), reading and writing QA
  files with errors that name the file and line;
* ``perturb.py``: entity perturbation (the subject swapped for a fictitious name, SEAT);
* ``names.py``: fictitious names that never collide with real ones;
* ``synth/``: the seeded synthetic datasets (contracts, authors, unverifiable, known), one
  module per dataset; ``arithmetic.py`` and ``access_codes.py``: the LfU testbed's sets.
"""
