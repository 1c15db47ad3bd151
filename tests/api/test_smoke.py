from tests.support.gateway import GatewayServer

VIEWER = "{ viewer { id email role partner { id name } } }"


async def test_viewer_is_the_tokens_user(gateway: GatewayServer) -> None:
    tenant = await gateway.tenant()
    data = await gateway.client(tenant.tokens["PARTNER_ADMIN"]).data(VIEWER)
    assert data["viewer"]["role"] == "PARTNER_ADMIN"
    assert data["viewer"]["partner"] == {"id": tenant.partner.id, "name": tenant.partner.name}
