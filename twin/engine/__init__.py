"""The twin engine: a SimPy model built from a plant model.

Units flow work unit -> buffer -> work unit along each line. Each idea has its module:

- ``stations``: a work unit's cycle (take a unit, setup, operator, material, run, scrap
  or pass on) and its visible states;
- ``buffers``: buffers and conveyors between work units (Little's-law figures);
- ``failures``: breakdowns on clock or operating time, injected stops, maintenance;
- ``operators``: who is on shift for a work unit that needs a skill;
- ``materials``: staged lots and their consumption per bill of material;
- ``process_values``: sampled values with noise, drift and per-product distributions;
- ``jobs``, ``lines``: job orders, the line's queue, release, WIP and flow time;
- ``assembly``: feeder branches releasing parts, assembly stations taking a kit of parts
  from several buffers at once;
- ``splits``: a station's way out chosen by the unit's product, merges of branches;
- ``observing``, ``control``: what observers are told; commands into the plant;
- ``plant``: ``Engine``, which builds it all and runs it (as fast as possible or paced).

Every visible change goes to the registered ``PlantObserver``s (``twin.hooks``) — with
none registered those calls are skipped — and everything that happened goes to the
ground-truth ``Ledger``.
"""

from twin.engine.buffers import BufferSim
from twin.engine.common import INFINITE, CannotKeepPace, ControlError, SimGen
from twin.engine.jobs import Job
from twin.engine.lines import LineSim
from twin.engine.materials import LotState, MaterialStore
from twin.engine.operators import Crew
from twin.engine.plant import PACE_MAX_SLEEP, PACE_TICK, Engine
from twin.engine.process_values import ProcessValueSim
from twin.engine.stations import WorkUnitSim

__all__ = [
    "INFINITE",
    "PACE_MAX_SLEEP",
    "PACE_TICK",
    "BufferSim",
    "CannotKeepPace",
    "ControlError",
    "Crew",
    "Engine",
    "Job",
    "LineSim",
    "LotState",
    "MaterialStore",
    "ProcessValueSim",
    "SimGen",
    "WorkUnitSim",
]
