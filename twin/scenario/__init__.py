"""Scenario runs: the bench's main job (``mestwin run``, ``mestwin demo``).

- ``runner``: the run (clock, timeline, faults, deviations, close-out, report);
- ``sut``: the system-under-test seam; ``sut_mes_core``: its mes_core adapter;
- ``plant``: the twin engine as the runner drives it; ``truth``: ground truth from the
  observer stream; ``link``: how plant events reach the MES; ``proxy``: cuttable TCP;
- ``mes_process``: the MES as a child process; ``people``: ERP, supervisor, operators, QA;
- ``reconcile``, ``expectations``: plain-data judgement; ``report``, ``html``, ``junit``:
  the report and its JSON Schema (``report.schema.json``).
"""
