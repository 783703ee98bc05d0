"""mestwin: a digital-twin test bench for Manufacturing Execution Systems.

This package is only the front door (the ``mestwin`` console command). The product lives
in ``mes_core`` (the MES), ``twin`` (the plant), ``plant_models`` (definitions),
``dashboards`` and ``loadtests``.
"""

__version__ = "0.1.0"
