"""The workbench works with no network: outbound sockets are refused (loopback and Unix
sockets stay open) while a full search (student, index, evidence, audit), a VCF
interpretation (with the models) and a patient summary run."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path

import pytest

from workbench.cli import main

GOLDEN_VCF = Path(__file__).parent / "core/genomics/golden/plain_vcf/input.vcf"


class OutboundConnection(AssertionError):
    pass


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a name: resolving it would need the network
        return False


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Refuse every non-loopback connection; returns the addresses that were attempted."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address: object) -> None:
        if not _is_local(address):
            attempts.append(address)
            raise OutboundConnection(f"outbound connection to {address!r} blocked by the test")

    def connect(self: socket.socket, address: object) -> None:
        guard(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


def test_the_guard_blocks_outbound_and_allows_loopback(no_network: list[object]) -> None:
    with socket.socket() as s, pytest.raises(OutboundConnection):
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routable
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client.connect(server.getsockname())
    assert no_network == [("192.0.2.1", 443)]


def test_search_vcf_and_summary_run_offline(
    built_workspace: Path, no_network: list[object], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "Carcinoma ductal invasivo da mama, HER2 positivo", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results and {"case_id", "modality", "score", "cancer_type"} <= set(results[0])

    assert main(["vcf", str(GOLDEN_VCF), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["variants"], "the VCF was interpreted"

    case_id = next(
        json.loads(line)["case_id"]
        for line in (built_workspace / "cohort/cases.jsonl").read_text().splitlines()
    )
    assert main(["summary", case_id, "--lang", "sw", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"].strip()
    assert no_network == []
