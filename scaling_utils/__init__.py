"""scaling_utils: the measurement code behind the executable companion to Luo (2024),
"Has LLM Reached the Scaling Ceiling Yet?".

Modules, one concern each: ``models`` (loading), ``data`` (corpora and windows), ``capture``
(hooks and streaming statistics), ``stats`` (estimators), ``synthetic`` (controls with known
answers), ``clt`` (Theorem 1 analysis), ``plots``, ``profiles`` (notebook parameters),
``cache`` (atomic, hash-keyed results) and ``runinfo`` (environment captured at run time).
"""

__version__ = "0.1.0"
