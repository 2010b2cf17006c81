"""scaling_utils: the measurement code behind the executable companion to Luo (2024),
"Has LLM Reached the Scaling Ceiling Yet?".

Layers (``ARCHITECTURE.md`` is the map): plumbing (``cache``, ``codec``, ``executor``,
``parameters``, ``profiles``, ``report``, ``runinfo``, ``cli``), sources (``models``, ``data``,
``capture``, ``synthetic``, ``tasks``, ``train``, ``published``), ``estimators`` by family, decisions (``verdicts``,
``worlds``), the four ``chapters`` with the same rooms each, and the pages that relate them
(``synthesis``, ``error_rates``, ``plots``).
"""

__version__ = "0.1.0"
