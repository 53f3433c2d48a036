"""The admin API and the `ltxserve keys` / `credits` commands: the same operations, two doors."""

from __future__ import annotations

import json

import requests

from .client import SMALL, assert_error, credits, generate
from .conftest import ADMIN_KEY


def admin(server, method: str, path: str, key: str | None = ADMIN_KEY, **kwargs) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    return requests.request(method, f"{server.base}/admin{path}", headers=headers, timeout=30, **kwargs)


def test_admin_creates_lists_credits_and_revokes_keys(server):
    created = admin(server, "POST", "/keys", json={"name": "alice", "credits": "1.5", "scopes": ["ltx-2-fast", "4k"]})
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith("ltx_") and new["credits"] == 1.5 and new["scopes"] == ["ltx-2-fast", "4k"]
    assert credits(server.base, new["key"]) == 1.5

    topped = admin(server, "POST", f"/keys/{new['id']}/credits", json={"amount": "2.25"})
    assert topped.json()["credits"] == 3.75
    listed = {row["id"]: row for row in admin(server, "GET", "/keys").json()}
    assert listed[new["id"]]["credits"] == 3.75 and "key" not in listed[new["id"]]
    assert new["key"] not in json.dumps(listed)

    assert admin(server, "POST", f"/keys/{new['id']}/revoke").json()["revoked_at"] is not None
    assert_error(generate(server.base, new["key"], SMALL), 401, "unauthorized")


def test_admin_refuses_bad_input_users_and_strangers(server):
    body = assert_error(admin(server, "POST", "/keys", json={"scopes": ["8k"], "credits": -1}), 400, "invalid_request")
    assert {detail["field"] for detail in body["details"]} == {"scopes.0", "credits"}  # the bad item, by place
    assert_error(admin(server, "POST", "/keys/key_nope/credits", json={"amount": "1"}), 404, "not_found")
    user_key = server.create_key("1")
    assert_error(admin(server, "GET", "/keys", key=user_key), 403, "forbidden")
    assert_error(admin(server, "GET", "/keys", key="ltx_guess"), 401, "unauthorized")
    assert_error(admin(server, "GET", "/keys", key=None), 401, "unauthorized")


def test_the_keys_commands(server):
    created = json.loads(server.cli("keys", "create", "--json", "--credits", "10", "--scope", "ltx-2-fast",
                                    "--scope", "4k", "--name", "bob", "--rpm", "5", "--concurrency", "3"))
    assert created["scopes"] == ["ltx-2-fast", "4k"] and created["rpm_limit"] == 5 and created["credits"] == "10"
    server.cli("credits", "add", created["id"], "2.5")
    assert credits(server.base, created["key"]) == 12.5
    rows = [json.loads(line) for line in server.cli("keys", "list", "--json").splitlines()]
    mine = next(row for row in rows if row["id"] == created["id"])
    assert mine["credits"] == "12.5" and mine["name"] == "bob" and mine["revoked_at"] is None
    server.cli("keys", "revoke", created["id"])
    assert_error(generate(server.base, created["key"], SMALL), 401, "unauthorized")
    plain = server.cli("keys", "create", "--credits", "1")
    assert plain.strip().startswith("ltx_") and len(plain.strip()) > 40
