"""The OpenAPI document and the docs describe the contract, errors included."""

import re
from typing import Any

import pytest
from httpx import AsyncClient

from entrypoints.settings import MEMORY_URL
from tests.api.helpers import PROBLEM_JSON, Json

# Every operation, and the problem statuses it can answer with.
OPERATIONS = {
    ("post", "/tasks"): {400, 409, 422},
    ("get", "/tasks"): {422},
    ("get", "/tasks/{id}"): {404, 422},
    ("patch", "/tasks/{id}"): {400, 404, 409, 412, 422},
    ("delete", "/tasks/{id}"): {404, 412, 422},
    ("post", "/projects"): {400, 409, 422},
    ("get", "/projects"): {422},
    ("get", "/projects/{id}"): {404, 422},
    ("patch", "/projects/{id}"): {400, 404, 409, 412, 422},
    ("delete", "/projects/{id}"): {404, 409, 412, 422},
    ("get", "/projects/{id}/tasks"): {404, 422},
    ("get", "/healthz"): {413},
    ("get", "/readyz"): {413, 503},
}
# Every operation on the data may also answer these.
DATA_ERRORS = {401, 413, 429, 503}
HEALTH = {("get", "/healthz"), ("get", "/readyz")}
# Conditional reads answer 304, without a body.
NOT_MODIFIED = {("get", "/tasks/{id}"), ("get", "/projects/{id}")}


SUCCESS = {"post": "201", "get": "200", "patch": "200", "delete": "204"}


@pytest.fixture
def database_url() -> str:
    """The document does not depend on the database, so one adapter suffices."""
    return MEMORY_URL


@pytest.fixture
async def openapi(client: AsyncClient) -> Json:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: Json = response.json()
    return document


def operations(document: Json) -> dict[tuple[str, str], Json]:
    """Operations keyed by method and path, with path parameters named {id}."""
    found = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            found[method, re.sub(r"\{[^}]+\}", "{id}", path)] = operation
    return found


def resolve(document: Json, schema: Json) -> Json:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def parameters(operation: Json) -> dict[str, Json]:
    return {p["name"]: p for p in operation.get("parameters", [])}


async def test_the_openapi_document_lists_every_path_and_method(
    openapi: Json,
) -> None:
    assert set(operations(openapi)) == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
async def test_every_operation_declares_its_success_and_error_responses(
    openapi: Json, method: str, path: str
) -> None:
    operation = operations(openapi)[method, path]
    statuses = set(operation["responses"])

    assert SUCCESS[method] in statuses
    assert {str(s) for s in OPERATIONS[method, path]} <= statuses
    if (method, path) not in HEALTH:
        assert {str(s) for s in DATA_ERRORS} <= statuses
    if (method, path) in NOT_MODIFIED:
        assert "ETag" in operation["responses"]["304"]["headers"]
    assert operation.get("summary")


CONDITIONAL = {
    ("get", "/tasks/{id}"): "If-None-Match",
    ("get", "/projects/{id}"): "If-None-Match",
    ("patch", "/tasks/{id}"): "If-Match",
    ("patch", "/projects/{id}"): "If-Match",
    ("delete", "/tasks/{id}"): "If-Match",
    ("delete", "/projects/{id}"): "If-Match",
}


@pytest.mark.parametrize(("method", "path"), sorted(CONDITIONAL))
async def test_conditional_headers_are_documented_after_the_path_id(
    openapi: Json, method: str, path: str
) -> None:
    operation = operations(openapi)[method, path]
    header = CONDITIONAL[method, path]

    assert [(p["in"], p["name"]) for p in operation["parameters"]] == [
        ("path", operation["parameters"][0]["name"]),
        ("header", header),
    ]
    documented = parameters(operation)[header]
    assert documented["required"] is False
    assert documented["description"]
    assert {"type": "string"} in documented["schema"]["anyOf"]


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
async def test_error_responses_are_documented_as_problem_details(
    openapi: Json, method: str, path: str
) -> None:
    operation = operations(openapi)[method, path]

    extra = DATA_ERRORS if (method, path) not in HEALTH else set()
    for status in OPERATIONS[method, path] | extra:
        content = operation["responses"][str(status)]["content"]
        assert PROBLEM_JSON in content, (status, content)
        schema = resolve(openapi, content[PROBLEM_JSON]["schema"])
        assert {"type", "title", "status", "detail"} <= set(schema["properties"])
        if status == 422:
            errors = schema["properties"]["errors"]
            item = resolve(openapi, errors["items"])
            assert {"field", "location", "message", "type"} <= set(item["properties"])


@pytest.mark.parametrize(
    ("path", "names"),
    [
        (
            "/tasks",
            {"done", "project_id", "priority", "q", "due_before", "due_after"},
        ),
        ("/projects/{id}/tasks", {"done", "priority", "q", "due_before", "due_after"}),
        ("/projects", {"q", "archived"}),
    ],
)
async def test_listings_document_their_filters_sort_and_window(
    openapi: Json, path: str, names: set[str]
) -> None:
    documented = parameters(operations(openapi)["get", path])

    assert names | {"sort", "limit", "offset"} <= set(documented)
    limit = resolve(openapi, documented["limit"]["schema"])
    assert (limit.get("minimum"), limit.get("maximum"), limit.get("default")) == (
        1,
        100,
        20,
    )
    offset = resolve(openapi, documented["offset"]["schema"])
    assert offset.get("minimum") == 0


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/tasks", ["id", "created_at", "updated_at", "due_date", "priority", "title"]),
        ("/projects", ["id", "name", "created_at", "updated_at"]),
    ],
)
async def test_the_sort_parameter_documents_the_whitelisted_fields(
    openapi: Json, path: str, fields: list[str]
) -> None:
    documented = parameters(operations(openapi)["get", path])
    sort = resolve(openapi, documented["sort"]["schema"])

    expected = {*fields, *(f"-{f}" for f in fields)}
    assert set(_enum(openapi, sort)) == expected


def _enum(document: Json, schema: Json) -> list[Any]:
    if "enum" in schema:
        return list(schema["enum"])
    for option in schema.get("anyOf", []):
        values = _enum(document, resolve(document, option))
        if values:
            return values
    return []


async def test_the_docs_page_is_served(client: AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
