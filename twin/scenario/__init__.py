"""Scenario runs: the bench's main job (``mestwin run``, ``mestwin demo``).

- ``runner``: the run's clock and order of work; ``context``: what its parts share;
  ``loading``: scenario and plant; ``mes_core_launch``: starting the MES; ``link_setup``:
  the equipment link; ``faults``, ``deviations``: the timeline; ``people_loop``: people in
  step with plant events; ``run_report``: reading back, reconciling, the report;
- ``sut``: the system-under-test seam; ``sut_mes_core``: its mes_core adapter;
  ``b2mml_channel``: orders in and actuals out as B2MML documents, for any adapter;
  ``load_plant``: ``mestwin mes load-plant`` (a plant's master data into a running MES);
- ``plant``: the twin engine as the runner drives it; ``truth``: ground truth from the
  observer stream; ``link``: how plant events reach the MES; ``proxy``: cuttable TCP;
- ``mes_process``: the MES as a child process; ``people``: ERP, supervisor, operators, QA;
- ``reconcile``, ``expectations``: plain-data judgement; ``report``, ``html``, ``junit``:
  the report and its JSON Schema (``report.schema.json``).
"""
