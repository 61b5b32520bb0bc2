"""Error masking: unexpected resolver exceptions become "Unexpected error." with a request id.

Only exceptions raised inside resolvers that are not public errors are masked; parse and
validation errors, permission denials and :class:`schema.errors.PublicError` stay as they are.
The full exception is logged with the same request id so operators can find it.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from schema.errors import PublicError

MASKED_MESSAGE = "Unexpected error."
logger = logging.getLogger("collabx.graphql")


def should_mask_error(error: GraphQLError) -> bool:
    """True for an error that carries an exception we did not raise on purpose."""
    original = error.original_error
    if original is None or isinstance(original, PublicError):
        return False
    if isinstance(original, GraphQLError) and (original.extensions or {}).get("code"):
        return False
    return not (error.extensions or {}).get("code")


class MaskUnexpectedErrors(MaskErrors):
    """strawberry's MaskErrors, adding ``extensions.code`` and ``requestId`` and logging."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask_error, error_message=MASKED_MESSAGE)

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
