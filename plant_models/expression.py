"""A small, safe expression language over a run's report figures (no ``eval``).

An expectation ``{type: expression, expr: "events.lost == 0 and kpi('BTL1', 'oee') >= 0.6"}``
is parsed with :mod:`ast` and only these nodes are allowed: numbers, strings (as function
arguments), the figure names below (dotted), arithmetic ``+ - * / %`` and unary ``- +``,
comparisons ``== != < <= > >=`` (chained too), ``and``, ``or``, ``not``, and calls of
:data:`FUNCTIONS` with positional arguments. Anything else (attributes of values,
subscripts, lambdas, comprehensions, ``**``, keyword arguments...) is refused when the
scenario is loaded, naming what and where. Evaluation walks the tree itself; nothing is
compiled or executed.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

MAX_LENGTH = 500

FIGURES: dict[str, str] = {
    "orders.total": "job orders the scenario released",
    "orders.completed": "of them, completed or closed in the MES",
    "events.sent": "plant events the connector posted",
    "events.ingested": "distinct events the MES accepted",
    "events.lost": "events the plant produced that the MES never accepted",
    "events.duplicated": "events the MES counted twice",
    "events.replayed": "events re-sent after a fault",
    "latency.count": "MES API calls timed",
    "latency.p50_ms": "their median latency (ms)",
    "latency.p95_ms": "95th percentile (ms)",
    "latency.p99_ms": "99th percentile (ms)",
    "latency.max_ms": "slowest (ms)",
    "reconciliation.rows": "rows reconciled",
    "reconciliation.mismatches": "rows that differ",
    "deviations.injected": "deviations injected",
    "deviations.refused": "refused by the MES",
    "deviations.caught": "caught by the MES (hold, nonconformance)",
    "deviations.accepted": "let through by the MES",
}
"""Figure names an expression may use -> what they are."""

FUNCTIONS: dict[str, str] = {
    "kpi": "kpi(id, name): a KPI of a line or work unit, e.g. kpi('BTL1', 'oee')",
    "labour": "labour(order): labour hours the MES booked on a job order",
    "abs": "abs(x)",
    "min": "min(x, y, ...)",
    "max": "max(x, y, ...)",
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class ExpressionError(ValueError):
    """The expression is not allowed, or cannot be evaluated (says what and where)."""


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _where(node: ast.AST) -> str:
    return f"column {getattr(node, 'col_offset', 0) + 1}"


def parse(text: str) -> ast.Expression:
    """Parse and check ``text``; raises :class:`ExpressionError` naming what is refused."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not an expression: {exc.msg} at column {exc.offset}") from None
    _check(tree.body)
    return tree


def _check(node: ast.expr) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool | int | float | str):
            return
        raise ExpressionError(f"constant {node.value!r} not allowed ({_where(node)})")
    if isinstance(node, ast.Name | ast.Attribute):
        name = _dotted(node)
        if name not in FIGURES:
            known = ", ".join(FIGURES)
            raise ExpressionError(
                f"unknown figure {name or '?'!r} ({_where(node)}); known: {known}"
            )
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
        _check(node.operand)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left)
        _check(node.right)
        return
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        _check(node.left)
        for comp in node.comparators:
            _check(comp)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(
                f"only the functions {', '.join(FUNCTIONS)} may be called ({_where(node)})"
            )
        if node.keywords:
            raise ExpressionError(f"keyword arguments not allowed ({_where(node)})")
        for arg in node.args:
            _check(arg)
        return
    raise ExpressionError(f"{type(node).__name__} not allowed ({_where(node)})")


def names_used(text: str) -> set[str]:
    """The figures and functions ``text`` uses (what it needs the run to have measured)."""
    out: set[str] = set()
    for node in ast.walk(parse(text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            out.add(node.func.id)
        elif isinstance(node, ast.Attribute | ast.Name):
            name = _dotted(node)
            if name in FIGURES:
                out.add(name)
    return out


def validate(text: str) -> str:
    """Pydantic validator: the expression text, once it parses and checks."""
    parse(text)
    return text


def evaluate(
    text: str,
    figures: Mapping[str, float | None],
    functions: Mapping[str, Callable[..., float | None]],
) -> Any:
    """The value of ``text`` with ``figures`` and ``functions``; a figure or function
    result that is None (not measured) raises :class:`ExpressionError` naming it."""
    calls: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max, **functions}
    return _eval(parse(text).body, figures, calls)


def _eval(node: ast.expr, figures: Mapping[str, float | None], calls: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name | ast.Attribute):
        name = _dotted(node) or "?"
        value = figures.get(name)
        if value is None:
            raise ExpressionError(f"{name} has no value in this run")
        return value
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, figures, calls) for v in node.values)
        return any(_eval(v, figures, calls) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, figures, calls)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, figures, calls), _eval(node.right, figures, calls)
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExpressionError(f"division by zero ({_where(node)})") from None
        except TypeError as exc:
            raise ExpressionError(f"{exc} ({_where(node)})") from None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, figures, calls)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, figures, calls)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise ExpressionError(f"{exc} ({_where(node)})") from None
            left = right
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_eval(a, figures, calls) for a in node.args]
        try:
            result = calls[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"{node.func.id}: {exc} ({_where(node)})") from None
        if result is None:
            shown = ", ".join(repr(a) for a in args)
            raise ExpressionError(f"{node.func.id}({shown}) has no value in this run")
        return result
    raise ExpressionError(f"{type(node).__name__} not allowed")  # checked by parse
