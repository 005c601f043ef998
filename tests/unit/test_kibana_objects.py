"""The Kibana saved objects in es_mappings/kibana/ are importable and only use real fields.

Kibana cannot run here, so these tests check what its import and its editors rely on:
every line parses, objects have the shape Kibana's saved-object types declare, every
reference resolves to an object in the files, and every field a data view, saved search
or Lens visualisation names exists in es_mappings/*.json with a type its operation
accepts (``percentile`` needs a number, ``terms`` a keyword, ``date_histogram`` a date).
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from rrsearch.core.mappings import load_template
from rrsearch.core.settings import Settings
from rrsearch.rrs.kibana import (
    JUDGMENTS_DATA_VIEW,
    OBJECTS_DIR,
    PASSAGES_DATA_VIEW,
    SEARCH_LOGS_DATA_VIEW,
    load_objects,
)

KNOWN_TYPES = {"index-pattern", "search", "lens", "dashboard"}
NUMERIC = {"integer", "long", "short", "byte", "float", "double", "half_float", "scaled_float"}
AGGREGATABLE = NUMERIC | {"keyword", "boolean", "date", "ip"}
# Attributes the dashboard saved-object schema (model versions 1-3) accepts.
DASHBOARD_ATTRIBUTES = {
    "title",
    "description",
    "kibanaSavedObjectMeta",
    "timeRestore",
    "timeFrom",
    "timeTo",
    "refreshInterval",
    "controlGroupInput",
    "panelsJSON",
    "optionsJSON",
    "hits",
    "version",
    "sections",
}
# Attributes the saved-search schema accepts up to model version 5 (typeMigrationVersion 10.5.0).
SEARCH_ATTRIBUTES = {
    "title",
    "description",
    "columns",
    "sort",
    "grid",
    "rowHeight",
    "rowsPerPage",
    "hideChart",
    "breakdownField",
    "kibanaSavedObjectMeta",
    "isTextBasedQuery",
    "usesAdHocDataView",
    "timeRestore",
    "timeRange",
    "refreshInterval",
    "viewMode",
    "hideAggregatedPreview",
    "hits",
    "version",
    "sampleSize",
    "headerRowHeight",
    "visContext",
    "density",
}
DASHBOARD_COLUMNS = 48
STAGES = ["embed_query", "bm25", "knn", "search", "fuse", "rerank", "total"]


# --- helpers: fields of a mapping and fields an object names ----------------------------


def mapping_fields(properties: dict, prefix: str = "") -> dict[str, str]:
    """``{"query": "text", "query.raw": "keyword", "timings_ms.rerank": "float", ...}``."""
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "type" in spec:
            fields[path] = spec["type"]
        for sub, sub_spec in spec.get("fields", {}).items():
            fields[f"{path}.{sub}"] = sub_spec["type"]
        fields.update(mapping_fields(spec.get("properties", {}), f"{path}."))
    return fields


KQL_FIELD = re.compile(r'(?<![\w."])([A-Za-z_@][\w.@]*)\s*(?::|<=|>=|<|>)')


def kql_fields(query: str) -> set[str]:
    """Field names in a KQL string (``status >= 400 or degraded : *`` -> status, degraded)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)
    return set(KQL_FIELD.findall(without_strings))


def filter_fields(filters: list) -> set[str]:
    return {f["meta"]["key"] for f in filters if f.get("meta", {}).get("key")}


def lens_layers(obj: dict) -> dict:
    return obj["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]


def field_uses(obj: dict) -> list[tuple[str, str]]:
    """(field, how it is used) for every field the object names."""
    attrs, kind = obj["attributes"], obj["type"]
    uses: list[tuple[str, str]] = []
    if kind == "index-pattern":
        if attrs.get("timeFieldName"):
            uses.append((attrs["timeFieldName"], "time"))
        uses += [(name, "label") for name in json.loads(attrs.get("fieldAttrs", "{}"))]
        uses += [(name, "format") for name in json.loads(attrs.get("fieldFormatMap", "{}"))]
        uses += [(f["value"], "source_filter") for f in json.loads(attrs.get("sourceFilters", "[]"))]
    elif kind == "search":
        uses += [(name, "column") for name in attrs.get("columns", [])]
        uses += [(pair[0], "sort") for pair in attrs.get("sort", [])]
        source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
        uses += [(name, "query") for name in kql_fields(source.get("query", {}).get("query", ""))]
        uses += [(name, "query") for name in filter_fields(source.get("filter", []))]
    elif kind == "lens":
        state = attrs["state"]
        uses += [(name, "query") for name in kql_fields(state["query"]["query"])]
        uses += [(name, "query") for name in filter_fields(state.get("filters", []))]
        for layer in lens_layers(obj).values():
            for column in layer["columns"].values():
                if column.get("sourceField") and column["sourceField"] != "___records___":
                    uses.append((column["sourceField"], column["operationType"]))
                if column.get("filter"):
                    uses += [(name, "query") for name in kql_fields(column["filter"]["query"])]
    return uses


def type_problem(use: str, field_type: str) -> str | None:
    """Why a field of this type cannot be used this way (None when it can)."""
    if use in ("time", "date_histogram") and field_type != "date":
        return "needs a date field"
    if use in ("percentile", "average", "sum", "median", "min", "max") and field_type not in NUMERIC:
        return "needs a numeric field"
    if use in ("terms", "unique_count", "sort") and field_type not in AGGREGATABLE:
        return "needs an aggregatable field (keyword, number, boolean, date)"
    if use == "query" and field_type in ("dense_vector", "object"):
        return "cannot be queried with KQL"
    return None


def field_problems(objects: list[dict], fields_by_data_view: dict[str, dict[str, str]]) -> list[str]:
    """Every field use that the mapping behind the object's data view does not support."""
    problems = []
    for obj in objects:
        if obj["type"] == "dashboard":
            continue
        if obj["type"] == "index-pattern":
            data_view = obj["id"]
        else:
            data_view = next(r["id"] for r in obj["references"] if r["type"] == "index-pattern")
        fields = fields_by_data_view[data_view]
        for name, use in field_uses(obj):
            where = f"{obj['type']} {obj['id']}: {name} ({use})"
            if name not in fields:
                problems.append(f"{where}: not in the mapping")
            elif problem := type_problem(use, fields[name]):
                problems.append(f"{where}: {fields[name]} field {problem}")
    return problems


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return load_objects(OBJECTS_DIR)


@pytest.fixture(scope="module")
def by_key(objects) -> dict[tuple[str, str], dict]:
    return {(o["type"], o["id"]): o for o in objects}


@pytest.fixture(scope="module")
def fields_by_data_view() -> dict[str, dict[str, str]]:
    return {
        PASSAGES_DATA_VIEW: mapping_fields(load_template("passages")["mappings"]["properties"]),
        SEARCH_LOGS_DATA_VIEW: mapping_fields(load_template("search_logs")["mappings"]["properties"]),
        JUDGMENTS_DATA_VIEW: mapping_fields(load_template("judgments")["mappings"]["properties"]),
    }


def of_type(objects, kind):
    return [o for o in objects if o["type"] == kind]


# --- the files --------------------------------------------------------------------------


def test_every_line_of_every_file_is_one_json_object():
    files = sorted(Path(OBJECTS_DIR).glob("*.ndjson"))
    assert files, "no saved objects shipped"
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines, path
        for number, line in enumerate(lines, start=1):
            assert isinstance(json.loads(line), dict), f"{path}:{number}"


def test_objects_have_what_kibana_import_needs(objects):
    assert Counter(o["type"] for o in objects).keys() == KNOWN_TYPES
    keys = [(o["type"], o["id"]) for o in objects]
    assert len(keys) == len(set(keys)), "duplicate (type, id)"
    for obj in objects:
        assert re.fullmatch(r"[a-z0-9-]+", obj["id"]), obj["id"]
        assert isinstance(obj["attributes"], dict) and obj["attributes"]["title"].strip(), obj["id"]
        # Exported objects carry their migration versions; without them Kibana would run
        # every migration since 7.x over an 8.x/9.x-shaped object.
        assert obj["coreMigrationVersion"] == "8.8.0", obj["id"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", obj["typeMigrationVersion"]), obj["id"]
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"


def test_every_reference_resolves_to_an_object_in_the_files(objects, by_key):
    for obj in objects:
        for ref in obj["references"]:
            assert set(ref) == {"id", "name", "type"}, ref
            assert (ref["type"], ref["id"]) in by_key, f"{obj['id']} -> {ref['type']}/{ref['id']}"


def test_data_views_cover_the_passage_alias_and_the_search_logs(objects, by_key):
    defaults = Settings.model_fields
    passages = by_key[("index-pattern", PASSAGES_DATA_VIEW)]["attributes"]
    logs = by_key[("index-pattern", SEARCH_LOGS_DATA_VIEW)]["attributes"]
    assert passages["title"] == defaults["index_alias"].default
    assert logs["title"] == defaults["search_log_index"].default
    assert logs["timeFieldName"] == "@timestamp"
    assert "embedding" in [f["value"] for f in json.loads(passages["sourceFilters"])]
    for view in of_type(objects, "index-pattern"):
        for key in ("fields", "fieldAttrs", "fieldFormatMap", "runtimeFieldMap", "sourceFilters"):
            json.loads(view["attributes"][key])  # Kibana stores these as JSON strings


def test_saved_searches_point_at_a_data_view_through_their_search_source(objects):
    searches = of_type(objects, "search")
    assert {SEARCH_LOGS_DATA_VIEW, PASSAGES_DATA_VIEW} <= {r["id"] for s in searches for r in s["references"]}
    for search in searches:
        assert tuple(map(int, search["typeMigrationVersion"].split("."))) <= (10, 5, 0), search["id"]
        assert set(search["attributes"]) <= SEARCH_ATTRIBUTES, set(search["attributes"]) - SEARCH_ATTRIBUTES
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert source["query"]["language"] == "kuery"
        ref = next(r for r in search["references"] if r["name"] == source["indexRefName"])
        assert ref["type"] == "index-pattern"
        assert search["attributes"]["columns"], search["id"]


def test_lens_layers_and_accessors_are_consistent(objects):
    for vis in of_type(objects, "lens"):
        state, where = vis["attributes"]["state"], vis["id"]
        layers = lens_layers(vis)
        assert layers, where
        view = JUDGMENTS_DATA_VIEW if vis["id"].startswith("rrs-judgments") else SEARCH_LOGS_DATA_VIEW
        for layer_id, layer in layers.items():
            assert {"name": f"indexpattern-datasource-layer-{layer_id}", "type": "index-pattern", "id": view} in vis[
                "references"
            ], where
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"]), where
            for column in layer["columns"].values():
                assert {"label", "dataType", "operationType", "isBucketed"} <= column.keys(), where
                order = column.get("params", {}).get("orderBy", {})
                if order.get("type") == "column":
                    assert order["columnId"] in layer["columns"], where
        columns = {c for layer in layers.values() for c in layer["columns"]}
        vis_state, kind = state["visualization"], vis["attributes"]["visualizationType"]
        if kind == "lnsXY":
            used = set()
            for layer in vis_state["layers"]:
                assert layer["layerId"] in layers and layer["layerType"] == "data", where
                used |= {layer["xAccessor"], *layer["accessors"]}
                used |= {layer["splitAccessor"]} if layer.get("splitAccessor") else set()
        elif kind == "lnsMetric":
            assert vis_state["layerId"] in layers, where
            used = {vis_state["metricAccessor"]}
        elif kind == "lnsDatatable":
            assert vis_state["layerId"] in layers, where
            used = {c["columnId"] for c in vis_state["columns"]}
            if "sorting" in vis_state:
                assert vis_state["sorting"]["columnId"] in used, where
        else:
            pytest.fail(f"{where}: unexpected visualizationType {kind}")
        assert used == columns, f"{where}: accessors {used} vs columns {columns}"


@pytest.mark.parametrize("dashboard_id", ["rrs-search-logs-dashboard", "rrs-judgments-dashboard"])
def test_dashboard_panels_resolve_and_fit_the_grid(objects, by_key, dashboard_id):
    assert {d["id"] for d in of_type(objects, "dashboard")} == {"rrs-search-logs-dashboard", "rrs-judgments-dashboard"}
    dashboard = by_key[("dashboard", dashboard_id)]
    attrs = dashboard["attributes"]
    assert set(attrs) <= DASHBOARD_ATTRIBUTES, set(attrs) - DASHBOARD_ATTRIBUTES
    assert attrs["timeRestore"] is True and attrs["timeFrom"].startswith("now-")
    json.loads(attrs["optionsJSON"])
    json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    panels = json.loads(attrs["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid, index = panel["gridData"], panel["panelIndex"]
        assert grid["i"] == index
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= DASHBOARD_COLUMNS, index
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"panel {index} overlaps another"
        cells |= area
        ref = refs.pop(f"{index}:{panel['panelRefName']}")
        assert ref["type"] == panel["type"]
        assert (ref["type"], ref["id"]) in by_key
    assert not refs, f"references no panel uses: {sorted(refs)}"
    on_dashboard = {r["id"] for d in of_type(objects, "dashboard") for r in d["references"]}
    assert {v["id"] for v in of_type(objects, "lens")} <= on_dashboard, "a visualisation is on no dashboard"


def test_every_field_named_exists_in_the_mappings_with_a_usable_type(objects, fields_by_data_view):
    assert field_problems(objects, fields_by_data_view) == []
    named = {name for obj in objects for name, _ in field_uses(obj)}
    # The parser really reaches into Lens state, search sources and nested KQL.
    assert {
        "query.raw",
        "timings_ms.rerank",
        "zero_hits",
        "degraded",
        "status",
        "@timestamp",
        "embedding",
        "indexed_at",
    } <= named


def test_the_dashboard_shows_what_the_issue_asks_for(objects, by_key):
    dashboard = by_key[("dashboard", "rrs-search-logs-dashboard")]
    on_dashboard = [by_key[(r["type"], r["id"])] for r in dashboard["references"]]
    lens_columns = [
        (column["operationType"], column.get("sourceField"), column.get("params", {}).get("percentile"))
        for vis in on_dashboard
        if vis["type"] == "lens"
        for layer in lens_layers(vis).values()
        for column in layer["columns"].values()
    ]
    queries = {name for vis in on_dashboard for name, use in field_uses(vis) if use == "query"}
    assert ("date_histogram", "@timestamp", None) in lens_columns  # searches over time
    for stage in STAGES:  # latency p50 / p95 per stage
        for pct in (50, 95):
            assert ("percentile", f"timings_ms.{stage}", pct) in lens_columns, (stage, pct)
    assert "zero_hits" in queries and ("terms", "query.raw", None) in lens_columns  # zero-hit / top queries
    assert ("terms", "degraded", None) in lens_columns  # degraded by reason
    assert ("terms", "status", None) in lens_columns  # error rates by status


# --- the checks themselves can fail -----------------------------------------------------


def test_kql_field_parser():
    assert kql_fields("status >= 400 or degraded : *") == {"status", "degraded"}
    assert kql_fields('query.raw : "a: b" and not timings_ms.total < 5') == {"query.raw", "timings_ms.total"}
    assert kql_fields("") == set()


def test_field_check_catches_unknown_fields_and_wrong_types(objects, fields_by_data_view):
    broken = copy.deepcopy([o for o in objects if o["id"] == "rrs-logs-latency-p95-per-stage"])
    columns = lens_layers(broken[0])["layer1"]["columns"]
    columns["p95_rerank"]["sourceField"] = "timings_ms.rerank_gpu"
    columns["p95_total"]["sourceField"] = "query"
    broken[0]["attributes"]["state"]["query"]["query"] = "zero_hit : true"
    problems = field_problems(broken, fields_by_data_view)
    assert any("timings_ms.rerank_gpu (percentile): not in the mapping" in p for p in problems)
    assert any("query (percentile): text field needs a numeric field" in p for p in problems)
    assert any("zero_hit (query): not in the mapping" in p for p in problems)


def test_the_judgments_dashboard_shows_marks_over_time_by_grade_and_per_query(objects, by_key):
    view = by_key[("index-pattern", JUDGMENTS_DATA_VIEW)]["attributes"]
    assert view["title"] == Settings.model_fields["judgments_index"].default and view["timeFieldName"] == "@timestamp"
    dashboard = by_key[("dashboard", "rrs-judgments-dashboard")]
    on_dashboard = [by_key[(r["type"], r["id"])] for r in dashboard["references"]]
    lens_columns = {
        (column["operationType"], column.get("sourceField"))
        for vis in on_dashboard
        if vis["type"] == "lens"
        for layer in lens_layers(vis).values()
        for column in layer["columns"].values()
    }
    assert {
        ("date_histogram", "@timestamp"),
        ("terms", "grade"),
        ("terms", "query.raw"),
        ("average", "grade"),
        ("unique_count", "client"),
    } <= lens_columns
    (browse,) = [obj for obj in on_dashboard if obj["type"] == "search"]
    assert {"query", "id", "grade", "client", "index_version"} <= set(browse["attributes"]["columns"])
