"""hotplex's metrics in a ``prometheus_client`` registry.

``prometheus_client`` is not a dependency of hotplex: it is imported when a
:class:`PrometheusCollector` is created, so only hosts that use it need it.
"""

from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List

from ._contract import _METRICS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from ._native import Engine


def _base_name(name: str, kind: str) -> str:
    """The family name prometheus_client uses (OpenMetrics drops a counter's
    ``_total`` and an info's ``_info``)."""
    suffix = {"counter": "_total", "info": "_info"}.get(kind)
    return name[: -len(suffix)] if suffix and name.endswith(suffix) else name


class PrometheusCollector:
    """A ``prometheus_client`` collector of an engine's metrics::

        from prometheus_client import REGISTRY
        REGISTRY.register(hotplex.PrometheusCollector(engine))

    Each scrape parses ``engine.metrics_text()`` with
    ``prometheus_client.openmetrics.parser`` and yields its families, so they
    appear in ``generate_latest()`` beside the host's own. ``describe()`` names
    the families from the schema without scraping the engine; register each
    engine into its own registry (their families have the same names). Raises
    ImportError if ``prometheus_client`` is not installed.
    """

    def __init__(self, engine: "Engine") -> None:
        # Imported here, not with hotplex: fail now rather than at a scrape.
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        self._engine = engine
        # The parser is untyped; this is its type.
        self._parse: Callable[[str], Iterable["Metric"]] = text_string_to_metric_families

    def collect(self) -> Iterator["Metric"]:
        """The engine's metric families, as of now."""
        yield from self._parse(self._engine.metrics_text())

    def describe(self) -> List["Metric"]:
        """The families collect() yields, without their samples (what a
        registry checks for clashes at registration)."""
        from prometheus_client.metrics_core import Metric

        return [Metric(_base_name(name, kind), text, kind) for name, kind, text in _METRICS]
