"""API keys: listed one a line, revoked at once (401 on the API, the browser session
made with the key ends), expired keys refused, all audited."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text

from models.clock import utcnow
from services.core import runtime
from tests.support import create_org, run_cli, token

HTML = {"Accept": "text/html"}


def _sign_in(client: TestClient, key: str) -> None:
    page = client.get("/signin", headers=HTML)
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert nonce
    r = client.post("/signin", headers=HTML, follow_redirects=False,
                    data={"token": key, "csrf": nonce.group(1), "next": "/review"})
    assert r.status_code == 303, r.text
    assert client.get("/review", headers=HTML, follow_redirects=False).status_code == 200


def _key(headers: dict[str, str]) -> str:
    return headers["Authorization"].split()[1]


def test_a_revoked_key_gets_401_and_its_web_session_ends(client: TestClient) -> None:
    create_org("school")
    admin = token("school", "admin", "Head")
    slt = token("school", "slt", "Deputy")
    assert client.get("/api/v1/pupils", headers=slt).status_code == 200
    _sign_in(client, _key(slt))

    listed = client.get("/api/v1/tokens", headers=admin)
    assert listed.status_code == 200
    deputy = next(t for t in listed.json() if t["name"] == "Deputy")
    assert deputy["state"] == "active" and deputy["revoked_at"] is None
    assert client.get("/api/v1/tokens", headers=slt).status_code == 403

    r = client.delete(f"/api/v1/tokens/{deputy['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert client.get("/api/v1/pupils", headers=slt).status_code == 401
    page = client.get("/review", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")
    with runtime.sessions()() as session:
        ended = session.execute(text(
            "SELECT count(*) FROM web_sessions WHERE ended_at IS NULL")).scalar_one()
        audited = session.execute(text(
            "SELECT details FROM audit_events WHERE action = 'token.revoked'")).scalars().all()
    assert ended == 0
    assert len(audited) == 1 and audited[0]["web_sessions_ended"] == 1
    # Another school's admin cannot reach this key.
    create_org("other")
    other = token("other", "admin")
    assert client.delete(f"/api/v1/tokens/{deputy['id']}", headers=other).status_code == 404


def test_an_expired_key_gets_401_and_its_web_session_ends(client: TestClient) -> None:
    create_org("school")
    out = run_cli("token", "create", "--org", "school", "--role", "slt", "--name", "Temp",
                  "--expires-in", "90d")
    assert "expires" in out
    slt = {"Authorization": f"Bearer {out.strip().splitlines()[-1]}"}
    assert client.get("/api/v1/pupils", headers=slt).status_code == 200
    _sign_in(client, _key(slt))
    listed = run_cli("token", "list", "--org", "school")
    line = next(x for x in listed.splitlines() if "\tTemp\t" in x)
    assert "\texpires " in line and line.endswith("\tactive")
    # Ninety days pass.
    with runtime.sessions()() as session:
        session.execute(text("UPDATE api_tokens SET expires_at = :t WHERE name = 'Temp'"),
                        {"t": utcnow() - timedelta(seconds=1)})
        session.commit()
    r = client.get("/api/v1/pupils", headers=slt)
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert client.get("/review", headers=HTML, follow_redirects=False).status_code == 303
    assert "\texpired " in next(x for x in run_cli("token", "list", "--org", "school")
                                .splitlines() if "\tTemp\t" in x)


def test_cli_lists_and_revokes_keys(client: TestClient) -> None:
    create_org("school")
    slt = token("school", "slt", "Deputy")
    lines = run_cli("token", "list", "--org", "school").strip().splitlines()
    assert len(lines) == 1
    token_id, role, name, created, expiry, revoked = lines[0].split("\t")
    assert (role, name, expiry, revoked) == ("slt", "Deputy", "no expiry", "active")
    assert created.startswith("created ")
    assert "revoked key" in run_cli("token", "revoke", token_id)
    assert client.get("/api/v1/pupils", headers=slt).status_code == 401
    after = run_cli("token", "list", "--org", "school").strip().split("\t")
    assert after[0] == token_id and after[-1].startswith("revoked ")
    assert "already revoked" in run_cli("token", "revoke", token_id)


def test_bad_expiry_is_refused(client: TestClient) -> None:
    from click.testing import CliRunner

    from services.cli import main as cli

    create_org("school")
    result = CliRunner().invoke(cli, ["token", "create", "--org", "school", "--role", "slt",
                                      "--name", "x", "--expires-in", "forever"])
    assert result.exit_code != 0 and "90d" in result.output
