"""The Markdown table of a bench result: one row per figure, beside its baseline."""

from __future__ import annotations

from typing import Any


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def rows(result: dict[str, Any]) -> list[tuple[str, Any, str, Any, Any, str]]:
    """(figure, value, baseline name, baseline value, ratio, unit) for the table."""
    out: list[tuple[str, Any, str, Any, Any, str]] = []
    for mix in ("steady", "turbulent"):
        mix_result = _get(result, "engine", mix) or {}
        # Each variant of the core measured (compiled and pure), each with its own baseline.
        for variant in ("compiled", "pure"):
            e = mix_result.get(variant)
            if not e:
                continue
            for path in ("single", "batch"):
                out.append(
                    (
                        f"engine {path} ({mix}, {variant})",
                        e.get(f"{path}_samples_per_s"),
                        "msgspec decode",
                        e.get("baseline_json_decode_samples_per_s"),
                        e.get(f"{path}_vs_baseline"),
                        "samples/s, one core",
                    )
                )
    for kind in ("envelope", "single"):
        d = _get(result, "drain", kind)
        if d:
            out.append(
                (
                    f"drain, 1 worker ({'envelopes' if kind == 'envelope' else 'bare samples'})",
                    d.get("samples_per_s"),
                    "bare aiokafka consumer",
                    d.get("baseline_aiokafka_samples_per_s"),
                    d.get("ratio_to_baseline"),
                    "samples/s",
                )
            )
    lat = result.get("latency")
    if lat:
        runs = [("worker", q, "") for q in ("p50_ms", "p95_ms", "p99_ms")]
        runs += [("worker_after_joins", q, ", after the joins") for q in ("p50_ms", "p99_ms")]
        for key, q, suffix in runs:
            w, b = _get(lat, key, q), _get(lat, "baseline_broker_round_trip", q)
            out.append(
                (
                    f"latency {q[:3]} at {lat['offered_samples_per_s']:,}/s{suffix}",
                    w,
                    "broker round trip",
                    b,
                    round(w / b, 2) if w and b else None,
                    "ms",
                )
            )
    s = result.get("sink")
    if s:
        out.append(
            (
                "sink",
                s.get("sink_rows_per_s"),
                "plain COPY",
                s.get("copy_rows_per_s"),
                s.get("ratio"),
                "rows/s",
            )
        )
    m = result.get("memory")
    if m:
        out.append(
            (
                f"memory at {m['participants']:,} participants",
                m.get("bytes_per_participant"),
                "idle worker RSS (MiB)",
                m.get("idle_rss_mb"),
                None,
                "bytes RSS / participant",
            )
        )
    sc = result.get("scale")
    if sc:
        out.append(
            (
                "drain, 2 workers",
                _get(sc, "workers_2", "samples_per_s"),
                "1 worker",
                _get(sc, "workers_1", "samples_per_s"),
                sc.get("ratio_2_to_1"),
                "samples/s",
            )
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# netquality bench",
        "",
        f"{m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, load "
        f"{m['load_average_1m']} at start, {m.get('load_average_1m_end', '?')} at end; "
        f"{result.get('elapsed_s', '?')} s.",
        "",
        "| figure | value | baseline | baseline value | ratio | unit | load (1 min) |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    loads = {
        "engine": "engine",
        "drain": "drain",
        "latency": "latency",
        "sink": "sink",
        "memory": "memory",
        "2 workers": "scale",
    }
    for figure, value, base_name, base, ratio, unit in rows(result):
        section = next((v for k, v in loads.items() if k in figure), "")
        load = _get(result, section, "load_average_1m")
        lines.append(
            f"| {figure} | {_fmt(value)} | {base_name} | {_fmt(base)} | {_fmt(ratio)} | {unit} "
            f"| {_fmt(load)} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:g}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)
