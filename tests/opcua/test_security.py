"""Security of the twin's OPC UA server: Basic256Sha256 Sign & Encrypt with a generated
self-signed certificate and username/password; a client without the right credentials
(or without encryption) is refused, one with them reads the plant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaError
from conftest import LoopThread, run

from mes_core.connectors.opcua.connector import CLIENT_APPLICATION_URI, client_certificate
from plant_models.schema import PlantModel
from twin.opcua.bench_raw import free_port
from twin.opcua.infomodel import NAMESPACE_URI
from twin.opcua.security import SecurityConfig
from twin.opcua.server import PlantServer

USERS = {"operator": "s3cret-Pa55"}


@pytest.fixture(scope="module")
def secured(mini: PlantModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pki = tmp_path_factory.mktemp("pki")
    loop = LoopThread()
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    server = PlantServer(
        mini, url, security=SecurityConfig(mode="sign-encrypt", users=USERS, pki_dir=pki)
    )
    loop.run(server.start())
    try:
        assert (pki / "server-cert.der").is_file(), "no certificate generated on first use"
        yield url
    finally:
        loop.run(server.stop())
        loop.close()


async def _encrypted_client(url: str, pki: Path, user: str | None, password: str | None) -> Client:
    client = Client(url, timeout=5)
    if user is not None:
        client.set_user(user)
        client.set_password(password or "")
    cert, key = await client_certificate(pki)
    client.application_uri = CLIENT_APPLICATION_URI
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(cert),
        str(key),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    return client


def test_server_offers_only_basic256sha256_sign_and_encrypt(secured: str) -> None:
    async def check() -> list[tuple[str, int]]:
        client = Client(secured, timeout=5)
        endpoints = await client.connect_and_get_server_endpoints()
        return [(e.SecurityPolicyUri, e.SecurityMode) for e in endpoints]

    offered = run(check())
    assert offered == [(SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt)]


def test_client_with_the_right_credentials_reads_the_plant(secured: str, tmp_path: Path) -> None:
    async def check() -> str:
        client = await _encrypted_client(secured, tmp_path, "operator", USERS["operator"])
        async with client:
            ns = await client.get_namespace_index(NAMESPACE_URI)
            node = await client.nodes.objects.get_child(
                [f"{ns}:Plant", f"{ns}:LA", f"{ns}:LA-FILL", f"{ns}:StateName"]
            )
            value: str = await node.read_value()
            return value

    assert run(check()) == "Stopped"


@pytest.mark.parametrize(
    ("user", "password", "status"),
    [
        ("operator", "wrong-password", "BadUserAccessDenied"),
        ("intruder", "s3cret-Pa55", "BadUserAccessDenied"),
        (None, None, "BadIdentityTokenRejected"),
    ],
    ids=["wrong-password", "unknown-user", "anonymous"],
)
def test_client_without_the_right_credentials_is_refused(
    secured: str, tmp_path: Path, user: str | None, password: str | None, status: str
) -> None:
    async def check() -> None:
        client = await _encrypted_client(secured, tmp_path, user, password)
        with pytest.raises(UaError) as refused:
            async with client:
                pass
        assert type(refused.value).__name__ == status

    run(check())


def test_client_without_encryption_is_refused(secured: str) -> None:
    async def check() -> None:
        client = Client(secured, timeout=5)
        client.set_user("operator")
        client.set_password(USERS["operator"])
        with pytest.raises(UaError, match="No matching endpoints"):
            async with client:
                pass

    run(check())


def test_the_connector_subscribes_over_sign_and_encrypt_with_its_own_certificate(
    secured: str, tmp_path: Path
) -> None:
    import asyncio

    from mes_core.connectors.opcua.connector import ConnectorOptions, EndpointLink
    from mes_core.connectors.opcua.events import EventBuilder

    async def check() -> tuple[int, int]:
        options = ConnectorOptions(
            security="sign-encrypt",
            username="operator",
            password=USERS["operator"],
            pki_dir=tmp_path / "pki",
        )
        link = EndpointLink(secured, options, EventBuilder("opcua:secured"))
        stop = asyncio.Event()
        task = asyncio.create_task(link.run(stop))
        await asyncio.wait_for(link.connected.wait(), 20)
        deadline = asyncio.get_running_loop().time() + 10
        while not link.buffer.items and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return len(link.bindings), len(link.buffer.items)

    bound, received = run(check())
    assert bound == 3
    assert received > 0, "no initial values arrived over the encrypted subscription"
