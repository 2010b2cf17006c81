"""Estimators by family, each taking plain arrays and returning small frozen dataclasses:
``moments`` (streaming statistics of representations), ``power_laws`` (y = c + A x^b),
``chinchilla`` (L = E + A/N^alpha + B/D^beta and its coupled form), ``intervals`` (hierarchical
bootstrap over runs and sequences, stretched and t intervals, jackknife), ``normality``,
``snr`` (signal-to-noise of labelled representations) and ``thresholds`` (logistic switches)."""
