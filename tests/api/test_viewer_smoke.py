"""The first request end to end: token, then the viewer over GraphQL."""

from __future__ import annotations

from tests.factories import Tenant

VIEWER = "query { viewer { clientId kind scopes sponsor { slug } } }"


async def test_viewer_names_the_calling_client(tenant: Tenant) -> None:
    body = await tenant.gql(VIEWER)
    assert "errors" not in body, body
    viewer = body["data"]["viewer"]
    assert viewer["clientId"] == tenant.admin_id
    assert viewer["kind"] == "ADMIN"
    assert "program:write" in viewer["scopes"]
    assert viewer["sponsor"] == {"slug": tenant.slug}
