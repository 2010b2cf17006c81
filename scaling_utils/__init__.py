"""scaling_utils: the measurement code behind the executable companion to Luo (2024),
"Has LLM Reached the Scaling Ceiling Yet?".

Modules, one concern each: ``models`` (loading), ``data`` (corpora and windows), ``capture``
(hooks and streaming statistics), ``stats`` (estimators), ``synthetic`` (controls and a
language with known answers), ``tasks`` (capabilities with exact metrics), ``train`` (students),
``scaling_law`` (Chinchilla fits), ``clt``, ``bias_variance`` and ``emergence`` (Theorems 1-4
analysis), ``plots``, ``report`` (glue and stored summaries), ``profiles`` (notebook
parameters), ``cache`` (atomic, hash-keyed results), ``codec`` (results as JSON and arrays,
never pickles), ``executor`` (where grids run), ``cli`` (``python -m scaling_utils``) and
``runinfo`` (environment at run time).
"""

__version__ = "0.1.0"
