"""Error masking: unexpected resolver exceptions become "Unexpected error." with a request id.

Only exceptions raised inside resolvers that are not public errors are masked; parse and
validation errors, permission denials and :class:`schema.errors.PublicError` stay as they are.
The full exception is logged with the same request id so operators can find it.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from db.errors import DomainError
from schema.errors import PublicError, camel_case

MASKED_MESSAGE = "Unexpected error."
logger = logging.getLogger("collabx.graphql")


def should_mask_error(error: GraphQLError) -> bool:
    """True for an error that carries an exception we did not raise on purpose."""
    original = error.original_error
    if original is None or isinstance(original, PublicError | DomainError):
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
            else error
            for error in processed
        ]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = str(getattr(context, "request_id", ""))
        original = error.original_error
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
