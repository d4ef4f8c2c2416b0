"""The private parts of :mod:`sktransfer.report`; users import ``sktransfer.report``.

- :mod:`.checks`: validation of the estimator, ``X``, ``y`` and a given ``y_score``;
- :mod:`.losses`: one pass of the model (predictions, per-sample losses), the worst
  predictions and the confused pairs;
- :mod:`.samples`: rows of ``X`` read back as the estimator reads them (images, texts);
- :mod:`.figures`: matplotlib figures made without pyplot;
- :mod:`.markup`: HTML primitives (escaping, tables, embedded PNGs);
- :mod:`.metrics`: the metrics tables of the report;
- :mod:`.document`: the report's page, section by section.

Nothing here imports :mod:`sktransfer.report` (it imports from here) or the CLI.
"""
