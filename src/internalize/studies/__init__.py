"""Studies beyond the paper: questions its discussion leaves open, each a sweep with a report section that states its
question and prediction first and then its verdict (``internalize study NAME``; ``internalize list`` shows them).

A study is a :class:`~internalize.studies.study.Study` record: an experiment file shipped here (``NAME.toml``, with a
``[sweep]`` table; its values are the ``quick`` preset), the settings of its ``paper`` preset, and its section
(``internalize.studies.NAME:section``), which reads only the sweep's combined table.
"""
