"""Recording a Chrome trace over a CDP session (shared by the trace benchmarks)."""

from __future__ import annotations

from typing import Any


def start_trace(cdp: Any, categories: list[str]) -> tuple[list[dict], list[bool]]:
    """Start tracing ``categories``; returns the list the events arrive in and a done flag
    (``[True]`` once ``Tracing.end`` has delivered everything)."""
    events: list[dict] = []
    done: list[bool] = []
    cdp.on("Tracing.dataCollected", lambda e: events.extend(e["value"]))
    cdp.on("Tracing.tracingComplete", lambda e: done.append(True))
    cdp.send(
        "Tracing.start",
        {"traceConfig": {"includedCategories": categories}, "transferMode": "ReportEvents"},
    )
    return events, done
