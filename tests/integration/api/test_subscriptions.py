"""Distributors manage their own subscriptions with their API key, and only their own."""

from __future__ import annotations

import uuid

from pantau.subscriptions.signing import subscription_secret
from tests.integration.api.conftest import ADMIN_TOKEN

HOOK = "https://hooks.example.co.id/pantau"


def test_a_distributor_creates_lists_changes_and_deletes_its_subscription(api, new_key, api_settings):
    with api.client(new_key("PT Sumber Pangan")) as client:
        created = client.post(
            "/v1/subscriptions",
            json={"webhook_url": HOOK, "commodities": ["beras"], "places": ["31"], "min_severity": "alert"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        subscription_id = body["subscription_id"]
        assert created.headers["location"] == f"/v1/subscriptions/{subscription_id}"
        assert body["signing_secret"] == subscription_secret(
            api_settings.webhook_secret_key, uuid.UUID(subscription_id), 1
        )
        assert body["created_at"].endswith("+07:00")

        listed = client.get("/v1/subscriptions").json()
        assert [s["subscription_id"] for s in listed["items"]] == [subscription_id]
        assert "signing_secret" not in listed["items"][0]

        changed = client.patch(f"/v1/subscriptions/{subscription_id}", json={"commodities": ["jagung", "beras"]})
        assert changed.status_code == 200, changed.text
        assert changed.json()["commodities"] == ["beras", "jagung"]
        assert changed.json()["min_severity"] == "alert"  # untouched

        rotated = client.post(f"/v1/subscriptions/{subscription_id}/rotate-secret").json()
        assert rotated["signing_secret"] != body["signing_secret"]

        assert client.delete(f"/v1/subscriptions/{subscription_id}").status_code == 204
        assert client.get(f"/v1/subscriptions/{subscription_id}").status_code == 404


def test_another_distributors_subscription_is_not_found_for_any_operation(api, new_key):
    with api.client(new_key("PT Satu")) as owner, api.client(new_key("PT Dua")) as other:
        subscription_id = owner.post("/v1/subscriptions", json={"webhook_url": HOOK}).json()["subscription_id"]
        path = f"/v1/subscriptions/{subscription_id}"
        assert other.get(path).status_code == 404
        assert other.patch(path, json={"webhook_url": "https://evil.example/"}).status_code == 404
        assert other.post(f"{path}/rotate-secret").status_code == 404
        assert other.delete(path).status_code == 404
        assert other.get("/v1/subscriptions").json()["items"] == []
        assert owner.get(path).json()["webhook_url"] == HOOK  # untouched


def test_subscription_routes_refuse_a_caller_without_a_valid_key(api, new_key):
    with api.client() as anonymous:
        response = anonymous.get("/v1/subscriptions")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["detail"]
    with api.client("ppk_000000000000_" + "a" * 43) as forged:
        assert forged.get("/v1/subscriptions").status_code == 401
    with api.client(ADMIN_TOKEN) as admin:  # the admin token is not a distributor key
        assert admin.post("/v1/subscriptions", json={"webhook_url": HOOK}).status_code == 401


def test_a_revoked_key_stops_working(api, new_key):
    key = new_key("PT Lama")
    key_id = key.split("_")[1]
    with api.client(key) as client:
        assert client.get("/v1/subscriptions").status_code == 200
        with api.client(ADMIN_TOKEN) as admin:
            assert admin.delete(f"/v1/admin/keys/{key_id}").json()["revoked_at"] is not None
        assert client.get("/v1/subscriptions").status_code == 401


def test_bad_subscription_bodies_get_a_4xx_naming_the_problem(api, new_key):
    with api.client(new_key("PT Teliti")) as client:
        cases = {
            "ftp://files.example/hook": "URL scheme should be 'http' or 'https'",
            "not a url": "valid URL",
        }
        for url, message in cases.items():
            response = client.post("/v1/subscriptions", json={"webhook_url": url})
            assert response.status_code == 422
            assert message in response.text
        unknown = client.post("/v1/subscriptions", json={"webhook_url": HOOK, "commodities": ["kopi_luwak"]})
        assert unknown.status_code == 422 and "unknown commodity 'kopi_luwak'" in unknown.text
        place = client.post("/v1/subscriptions", json={"webhook_url": HOOK, "places": ["atlantis"]})
        assert place.status_code == 422 and "unknown place 'atlantis'" in place.text
        severity = client.post("/v1/subscriptions", json={"webhook_url": HOOK, "min_severity": "normal"})
        assert severity.status_code == 422 and "min_severity" in severity.text
        extra = client.post("/v1/subscriptions", json={"webhook_url": HOOK, "secret": "mine"})
        assert extra.status_code == 422 and "secret" in extra.text
        null = client.post("/v1/subscriptions", json={"webhook_url": HOOK})
        patch = client.patch(f"/v1/subscriptions/{null.json()['subscription_id']}", json={"webhook_url": None})
        assert patch.status_code == 422 and "webhook_url" in patch.text  # leave it out to keep it
        broken = client.post("/v1/subscriptions", content=b"{", headers={"content-type": "application/json"})
        assert broken.status_code == 422 and "JSON" in broken.text


def test_subscriptions_are_paged_with_a_next_link(api, new_key):
    with api.client(new_key("PT Banyak")) as client:
        made = [client.post("/v1/subscriptions", json={"webhook_url": f"{HOOK}/{i}"}).json() for i in range(5)]
        seen, url = [], "/v1/subscriptions?limit=2"
        while url:
            page = client.get(url).json()
            seen += [s["subscription_id"] for s in page["items"]]
            url = page["next"]
        assert seen == [s["subscription_id"] for s in made]
        assert client.get("/v1/subscriptions?cursor=garbage").status_code == 422


def test_admin_routes_need_the_admin_token(api, new_key):
    key = new_key("PT Biasa")
    with api.client(key) as distributor:
        assert distributor.post("/v1/admin/keys", json={"name": "PT Palsu"}).status_code == 401
    with api.client("wrong") as guesser:
        assert guesser.get("/v1/admin/keys").status_code == 401
    with api.client(ADMIN_TOKEN) as admin:
        keys = admin.get("/v1/admin/keys").json()
        assert [k["name"] for k in keys] == ["PT Biasa"]
        assert key not in str(keys)  # the key itself is never shown again
        assert admin.post("/v1/admin/keys", json={"name": "  "}).status_code == 422
