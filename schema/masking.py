"""Error masking: unexpected resolver exceptions become "Unexpected error." with a request id.

Only exceptions raised inside resolvers that are not public errors are masked; parse and
validation errors, permission denials and :class:`schema.errors.PublicError` stay as they are.
The full exception is logged with the same request id so operators can find it.

A database that cannot be reached (a killed connection, a server that does not listen, an
exhausted pool: :func:`db.availability.is_unavailable`) is not a bug: it answers
``extensions.code = "SERVICE_UNAVAILABLE"`` with ``retryAfter`` (seconds), which the HTTP view
turns into a 503 with ``Retry-After``. The transaction of a mutation has been rolled back then,
so a retry (with the same idempotency key) is safe.

Every error leaves with an ``extensions.code``: request errors that graphql-core reports without
one get ``GRAPHQL_PARSE_FAILED`` (syntax), ``VALIDATION`` (a variable whose value does not
coerce: a malformed date, a float for an Int...) or ``GRAPHQL_VALIDATION_FAILED`` (the document
does not fit the schema); graphql-core's execution errors (a null for a non-null field) are
bugs and answer ``INTERNAL_SERVER_ERROR``.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.extensions import MaskErrors

from db.availability import is_unavailable
from db.errors import DomainError
from schema.errors import PublicError, camel_case

MASKED_MESSAGE = "Unexpected error."
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "The database is unavailable right now; retry shortly."
RETRY_AFTER_SECONDS = 1
logger = logging.getLogger("collabx.graphql")


def _coercion_error(error: GraphQLError) -> bool:
    """A variable's value that did not coerce to its type (a client error, before execution)."""
    return error.path is None and (
        isinstance(error.original_error, StrawberryInputCoercionError)
        or error.message.startswith("Variable '$")
    )


def should_mask_error(error: GraphQLError) -> bool:
    """True for an error that carries an exception we did not raise on purpose."""
    original = error.original_error
    if original is None or isinstance(original, PublicError | DomainError):
        return False
    if _coercion_error(error):
        return False
    if isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
        return False
    return not (error.extensions or {}).get("code")


def _public_domain_error(error: GraphQLError, exc: DomainError) -> GraphQLError:
    """A domain failure that escaped a resolver (e.g. a tampered cursor) as a coded error."""
    extensions: dict[str, object] = {"code": exc.code}
    if exc.field is not None:
        extensions["field"] = camel_case(exc.field)
    return GraphQLError(
        message=exc.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def _with_code(error: GraphQLError) -> GraphQLError:
    """``error``, given a code when graphql-core reported it without one."""
    if (error.extensions or {}).get("code"):
        return error
    if error.path is not None:
        code = "INTERNAL_SERVER_ERROR"  # graphql-core's own execution errors: a bug of ours
    elif error.message.startswith("Syntax Error"):
        code = "GRAPHQL_PARSE_FAILED"
    elif _coercion_error(error):
        code = "VALIDATION"
    else:
        code = "GRAPHQL_VALIDATION_FAILED"
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


class MaskUnexpectedErrors(MaskErrors):
    """strawberry's MaskErrors, adding ``extensions.code`` and ``requestId`` and logging.

    Domain exceptions of ``db.queries`` that reach the top level keep their message and code.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        return [
            _public_domain_error(error, error.original_error)
            if isinstance(error.original_error, DomainError)
            else _with_code(error)
            for error in processed
        ]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = str(getattr(context, "request_id", ""))
        original = error.original_error
        if original is not None and is_unavailable(original):
            logger.warning(
                "database unavailable in %s (request %s): %s",
                ".".join(str(p) for p in error.path or ()),
                request_id,
                type(original).__name__,
            )
            return GraphQLError(
                message=UNAVAILABLE_MESSAGE,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=None,
                extensions={
                    "code": SERVICE_UNAVAILABLE,
                    "retryAfter": RETRY_AFTER_SECONDS,
                    "requestId": request_id,
                },
            )
        logger.error(
            "unexpected error in %s (request %s)",
            ".".join(str(p) for p in error.path or ()),
            request_id,
            exc_info=(type(original), original, original.__traceback__) if original else None,
        )
        return GraphQLError(
            message=MASKED_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
