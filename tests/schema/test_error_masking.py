"""Unexpected resolver exceptions are masked with a request id; expected errors are not."""

from __future__ import annotations

import logging

import pytest
import strawberry
from graphql import GraphQLError

from schema.errors import PublicError
from schema.masking import MASKED_MESSAGE, MaskUnexpectedErrors, should_mask_error
from tests.factories import Tenant


@strawberry.type
class _BrokenQuery:
    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError("database password is hunter2")

    @strawberry.field
    def public(self) -> int:
        raise PublicError("you asked for something odd", "VALIDATION")


class _Context:
    request_id = "req-123"


async def test_resolver_exception_is_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    schema = strawberry.Schema(query=_BrokenQuery, extensions=[MaskUnexpectedErrors])
    with caplog.at_level(logging.ERROR, logger="collabx.graphql"):
        result = await schema.execute("{ boom }", context_value=_Context())
    assert result.errors is not None
    error = result.errors[0]
    assert error.message == MASKED_MESSAGE
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-123"}
    assert "hunter2" not in str(error.formatted)
    assert any("req-123" in record.getMessage() for record in caplog.records)


async def test_public_and_validation_errors_are_not_masked() -> None:
    schema = strawberry.Schema(query=_BrokenQuery, extensions=[MaskUnexpectedErrors])
    public = await schema.execute("{ public }", context_value=_Context())
    assert public.errors is not None
    assert public.errors[0].message == "you asked for something odd"
    invalid = await schema.execute("{ nope }", context_value=_Context())
    assert invalid.errors is not None
    assert "nope" in invalid.errors[0].message
    assert not should_mask_error(GraphQLError("syntax"))


async def test_validation_errors_reach_http_clients_unmasked(tenant: Tenant) -> None:
    body = await tenant.gql("{ viewer { noSuchField } }")
    assert "noSuchField" in body["errors"][0]["message"]
