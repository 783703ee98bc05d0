"""The engine against exact results of queueing and production-line theory.

Each check runs enough seeded replications that a 99 % Student-t confidence interval
decides (and is required to be tight, so the check has teeth); the seeds are fixed, so a
run is reproducible and a failure is a real regression, not bad luck on the day.
References: Buzacott & Shanthikumar, *Stochastic Models of Manufacturing Systems* (1993),
ch. 2-4 (availability, two-stage lines, operation-dependent failures); Kleinrock,
*Queueing Systems* vol. 1 (1975), 3.2 (M/M/1) and 3.5 (M/M/c, Erlang C); Little (1961).
"""

from __future__ import annotations

import math

import pytest
from twin_test_plants import exponential, plant, work_unit

from twin.engine import Engine
from twin.replicate import replicate, snapshot, window_kpis

CONFIDENCE = 0.99


def _decides(est: object, exact: float, max_rel_half_width: float) -> None:
    from twin.replicate import Estimate

    assert isinstance(est, Estimate)
    assert est.half_width <= max_rel_half_width * abs(exact), (
        f"interval too wide to decide: {est.mean:.5g} +- {est.half_width:.3g}"
    )
    assert est.contains(exact), (
        f"exact {exact:.6g} outside the {CONFIDENCE:.0%} interval "
        f"[{est.low:.6g}, {est.high:.6g}] (mean {est.mean:.6g}, n={est.n})"
    )


def test_throughput_of_a_single_work_unit_with_clock_failures_is_availability_over_cycle_time() -> (
    None
):
    """Deterministic cycle t, time-dependent failures (exp. MTTF on the clock), MTTR:
    throughput = A / t with A = MTTF / (MTTF + MTTR) (preemptive resume: no work lost)."""
    t, mttf, mttr = 2.0, 300.0, 60.0
    model = plant(
        [
            work_unit(
                "L1-M1",
                t,
                failures=[
                    {
                        "name": "f",
                        "basis": "clock",
                        "time_to_failure": exponential(mttf),
                        "time_to_repair": exponential(mttr),
                    }
                ],
            )
        ]
    )
    result = replicate(model, 12, 60_000.0, seed=11, confidence=CONFIDENCE)
    availability = mttf / (mttf + mttr)
    _decides(result["line.L1.throughput_per_hour"], availability / t * 3600.0, 0.02)
    _decides(result["wu.L1-M1.down_share"], 1 - availability, 0.1)


def test_mm1_station_matches_utilisation_number_in_system_and_time_in_system() -> None:
    """M/M/1 with lambda = 0.5, mu = 1: rho = 0.5, L = rho/(1-rho) = 1, W = 1/(mu-lambda) = 2."""
    lam, mu = 0.5, 1.0
    model = plant(
        [work_unit("L1-M1", exponential(1 / mu))],
        arrivals={"interarrival": exponential(1 / lam)},
    )
    result = replicate(model, 12, 60_000.0, seed=5, warmup=2_000.0, confidence=CONFIDENCE)
    rho = lam / mu
    _decides(result["wu.L1-M1.running_share"], rho, 0.03)
    _decides(result["line.L1.mean_wip"], rho / (1 - rho), 0.06)
    _decides(result["line.L1.mean_flow_time"], 1 / (mu - lam), 0.06)


def _erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """M/M/c mean wait in queue: Wq = C(c, a) / (c mu - lambda), a = lambda/mu, with
    Erlang's C formula C = (a^c / c! / (1 - rho)) / (sum_{k<c} a^k/k! + a^c / c! / (1 - rho))."""
    a = lam / mu
    rho = a / c
    tail = a**c / math.factorial(c) / (1 - rho)
    erlang_c = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    return erlang_c / (c * mu - lam)


def test_parallel_station_is_an_mmc_queue_with_the_erlang_c_waiting_time() -> None:
    """c = 3 identical exponential work units (mu = 1) of one station sharing the line's
    input queue, Poisson arrivals (lambda = 2.4, rho = 0.8): the time in queue is Erlang
    C's Wq = 1.0787 s, each unit busy rho of the time."""
    c, lam, mu = 3, 2.4, 1.0
    model = plant(
        [work_unit(f"L1-M{i + 1}", exponential(1 / mu), station="L1-S") for i in range(c)],
        arrivals={"interarrival": exponential(1 / lam)},
    )
    result = replicate(model, 10, 12_000.0, seed=3, warmup=500.0, confidence=CONFIDENCE)
    _decides(result["buffer.L1-ARRIVALS.mean_sojourn"], _erlang_c_wait(lam, mu, c), 0.15)
    for i in range(c):
        _decides(result[f"wu.L1-M{i + 1}.running_share"], lam / (c * mu), 0.03)


@pytest.mark.parametrize(
    "rework",
    [
        {"to": "L1-M", "probability": 0.25},
        # the same odds by a process-value rule: V ~ U(0, 1) fails above 0.75
        {"to": "L1-M", "rule": {"value": "V", "high": 0.75}},
    ],
    ids=["probability", "value-rule"],
)
def test_rework_loop_throughput_and_geometric_visits(rework: dict[str, object]) -> None:
    """A saturated exponential work unit (mu = 1) whose inspection sends a unit back to its
    own input with p = 0.25: visits per unit are geometric, mean 1 / (1 - p), so the line
    makes TH = mu (1 - p) = 2,700 units/h while the work unit processes mu = 3,600/h."""
    from twin.replicate import estimate

    p, mu = 0.25, 1.0
    value = {"name": "V", "distribution": {"kind": "uniform", "low": 0, "high": 1}}
    model = plant(
        [
            work_unit("L1-FEED", 0.01),  # never lets L1-M starve
            work_unit(
                "L1-M",
                exponential(1 / mu),
                rework=rework,
                process_values=[{**value, "update_period": 0.5}],
            ),
            work_unit("L1-OUT", 0.2),
        ],
        [("L1-FEED", "L1-M", 10)],
    )
    result = replicate(model, 10, 5_000.0, seed=21, warmup=200.0, confidence=CONFIDENCE)
    _decides(result["line.L1.throughput_per_hour"], mu * (1 - p) * 3600.0, 0.03)
    visits = [
        run["wu.L1-M.throughput_per_hour"] / run["line.L1.throughput_per_hour"]
        for run in result.runs
    ]
    _decides(estimate(visits, CONFIDENCE), 1 / (1 - p), 0.03)


ALL_DAY = {
    "id": "ALL-DAY",
    "shifts": [
        {"name": "night", "start": "00:00", "end": "08:00"},
        {"name": "early", "start": "08:00", "end": "16:00"},
        {"name": "late", "start": "16:00", "end": "00:00"},
    ],
}


def test_two_machines_sharing_one_operator_per_cycle_are_an_mm1_queue() -> None:
    """A parallel station of two exponential work units (mu = 1) whose every cycle needs
    the one operator of the pool (``operator_attends: cycle``), Poisson arrivals lambda =
    0.5: the operator is the single server, so W = 1 / (mu - lambda) = 2 s and the two
    machines together run rho = 0.5 of the time; a machine waiting for the operator is idle."""
    lam, mu = 0.5, 1.0
    model = plant(
        [
            work_unit(
                f"L1-M{i}",
                exponential(1 / mu),
                station="L1-S",
                operator_skill="run",
                operator_attends="cycle",
            )
            for i in (1, 2)
        ],
        arrivals={"interarrival": exponential(1 / lam)},
        shift_calendars=[ALL_DAY],
        operators=[{"id": "OP-1", "skills": ["run"], "calendar": "ALL-DAY"}],
    )
    result = replicate(model, 10, 20_000.0, seed=5, warmup=1_000.0, confidence=CONFIDENCE)
    _decides(result["line.L1.mean_flow_time"], 1 / (mu - lam), 0.06)
    running = [r["wu.L1-M1.running_share"] + r["wu.L1-M2.running_share"] for r in result.runs]
    from twin.replicate import estimate

    _decides(estimate(running, CONFIDENCE), lam / mu, 0.03)
    assert result["wu.L1-M2.idle_share"].mean > 0.05  # waited for the operator


@pytest.mark.parametrize(
    ("mu1", "mu2", "capacity"),
    [(1.0, 1.0, 2), (1.0, 1.25, 3), (1.2, 0.9, 1)],
)
def test_two_exponential_work_units_with_a_buffer_match_the_blocking_formula(
    mu1: float, mu2: float, capacity: int
) -> None:
    """Two reliable exponential stations, buffer C, blocking after service:
    TH = mu1 (1 - r^N) / (1 - r^(N+1)), r = mu1/mu2, N = C + 2 (mu1 = mu2: mu N/(N+1))."""
    model = plant(
        [work_unit("L1-M1", exponential(1 / mu1)), work_unit("L1-M2", exponential(1 / mu2))],
        [("L1-M1", "L1-M2", capacity)],
    )
    n = capacity + 2
    if mu1 == mu2:
        exact = mu1 * n / (n + 1)
    else:
        r = mu1 / mu2
        exact = mu1 * (1 - r**n) / (1 - r ** (n + 1))
    result = replicate(model, 10, 40_000.0, seed=7, warmup=500.0, confidence=CONFIDENCE)
    _decides(result["line.L1.throughput_per_hour"], exact * 3600.0, 0.02)


def test_littles_law_holds_on_every_buffer_and_on_the_line() -> None:
    """L = lambda W on each buffer and on the line (sample-path identity up to the units
    still inside at the end), here on an unreliable four-station line with a conveyor."""
    model = plant(
        [
            work_unit("L1-A", exponential(1.0)),
            work_unit(
                "L1-B",
                {"kind": "triangular", "low": 0.5, "mode": 1.0, "high": 1.6},
                failures=[
                    {
                        "name": "jam",
                        "time_to_failure": exponential(200.0),
                        "time_to_repair": exponential(20.0),
                    }
                ],
            ),
            work_unit(
                "L1-C", {"kind": "lognormal", "mean": 0.9, "sd": 0.5}, scrap_probability=0.02
            ),
            work_unit("L1-D", {"kind": "uniform", "low": 0.6, "high": 1.4}),
        ],
        [("L1-A", "L1-B", 5), ("L1-B", "L1-C", 10), ("L1-C", "L1-D", 3)],
        arrivals={"interarrival": exponential(1.3)},
    )
    engine = Engine(model, seed=3, record_intervals=False)
    start = snapshot(engine)
    engine.run_until(100_000.0)
    kpis = window_kpis(start, snapshot(engine))
    names = ["line.L1", "buffer.L1-ARRIVALS", "buffer.B1", "buffer.B2", "buffer.B3"]
    for name in names:
        level = kpis[f"{name}.mean_level" if name.startswith("buffer") else f"{name}.mean_wip"]
        rate = kpis[f"{name}.arrival_rate"]
        wait = kpis[
            f"{name}.mean_sojourn" if name.startswith("buffer") else f"{name}.mean_flow_time"
        ]
        assert level > 0.05, name
        assert rate * wait == pytest.approx(level, rel=0.01), name


def test_serial_line_without_buffers_with_operation_dependent_failures_has_efficiency_formula() -> (
    None
):
    """Equal deterministic cycle times, no buffers, operation-dependent failures:
    E = 1 / (1 + sum(MTTR_i / MTBF_i)) (Buzacott 1968); throughput = E / t."""
    t = 1.0
    stations = [(50.0, 5.0), (80.0, 4.0), (100.0, 10.0)]  # (MTBF operating, MTTR)
    model = plant(
        [
            work_unit(
                f"L1-M{i + 1}",
                t,
                failures=[
                    {
                        "name": "f",
                        "basis": "operating",
                        "time_to_failure": exponential(mtbf),
                        "time_to_repair": exponential(mttr),
                    }
                ],
            )
            for i, (mtbf, mttr) in enumerate(stations)
        ]
    )
    efficiency = 1 / (1 + sum(mttr / mtbf for mtbf, mttr in stations))
    result = replicate(model, 12, 20_000.0, seed=13, confidence=CONFIDENCE)
    _decides(result["line.L1.throughput_per_hour"], efficiency / t * 3600.0, 0.02)


def test_confidence_interval_is_the_student_t_interval_of_the_mean() -> None:
    from scipy import stats

    from twin.replicate import estimate

    values = [9.8, 10.4, 10.1, 9.6, 10.3, 10.0]
    est = estimate(values, confidence=0.95)
    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=sum(values) / len(values), scale=stats.sem(values)
    )
    assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))
    assert est.n == 6 and est.contains(10.0) and not est.contains(11.0)
