"""The read API answers a known week of prices, shipments and alerts with the figures a food
security officer would compute by hand."""

from __future__ import annotations

import csv
import io

import pytest

from tests.integration.api.data import S2, S3


def get(api, path: str, **params: object):
    with api.client() as client:
        return client.get(path, params=params)


def ok(api, path: str, **params: object):
    response = get(api, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


# --- prices -----------------------------------------------------------------------------------------


def test_latest_price_carries_the_het_and_how_far_above_it_it_is(api, seeded):
    [smep] = ok(api, "/v1/prices/latest", commodity="beras", market="pasar_smep")
    assert smep["price_idr"] == 14000
    assert smep["observed_at"] == "2026-03-09T08:00:00+07:00"
    assert smep["reference_price"]["kind"] == "het" and smep["reference_price"]["price_idr"] == 13500
    assert smep["pct_above_reference"] == pytest.approx(3.7, abs=0.01)
    [pibc] = ok(api, "/v1/prices/latest", market="pibc")
    assert pibc["price_idr"] == 12950 and pibc["reference_price"] is None  # no HET at wholesale level
    lampung = ok(api, "/v1/prices/latest", province="18")
    assert {p["market_code"] for p in lampung} == {"pasar_smep", "pasar_tugu", "prov_18"}


def test_daily_history_is_newest_first_in_wib_days(api, seeded):
    page = ok(api, "/v1/prices/history", commodity="beras", market="pasar_smep", bucket="day")
    assert [(b["bucket_start"], b["avg_price_idr"]) for b in page["items"]] == [
        ("2026-03-09T00:00:00+07:00", 14000),
        ("2026-03-03T00:00:00+07:00", 12500),
        ("2026-03-02T00:00:00+07:00", 12000),
    ]
    assert page["items"][0]["pct_above_reference"] == pytest.approx(3.7, abs=0.01)
    assert page["next"] is None


def test_weekly_buckets_start_on_monday_and_hourly_ones_average_within_the_hour(api, seeded):
    weeks = ok(api, "/v1/prices/history", commodity="beras", market="pasar_smep", bucket="week")["items"]
    assert [(w["bucket_start"], w["avg_price_idr"], w["observations"]) for w in weeks] == [
        ("2026-03-09T00:00:00+07:00", 14000, 1),
        ("2026-03-02T00:00:00+07:00", 12250, 2),
    ]
    [hour] = ok(api, "/v1/prices/history", commodity="beras", market="pibc", bucket="hour")["items"]
    assert hour["bucket_start"] == "2026-03-02T05:00:00+07:00"
    assert (hour["avg_price_idr"], hour["min_price_idr"], hour["max_price_idr"]) == (12900, 12850, 12950)


def test_a_province_history_averages_its_markets_without_the_official_average(api, seeded):
    monday = {"from": "2026-03-02T00:00:00+07:00", "to": "2026-03-03T00:00:00+07:00"}
    items = ok(api, "/v1/prices/history", commodity="beras", province="18", **monday)["items"]
    assert [(i["place"], i["avg_price_idr"], i["observations"]) for i in items] == [("18", 12100, 2)]


def test_history_pages_follow_the_next_link_to_the_end(api, seeded):
    seen, url = [], "/v1/prices/history?commodity=beras&limit=2"
    with api.client() as client:
        while url:
            page = client.get(url).json()
            seen += [(i["bucket_start"], i["place"]) for i in page["items"]]
            url = page["next"]
    everything = ok(api, "/v1/prices/history", commodity="beras", limit=1000)["items"]
    assert seen == [(i["bucket_start"], i["place"]) for i in everything]
    assert len(seen) == 9 and len(set(seen)) == 9


def test_jakarta_lampung_disparity_compares_the_province_averages(api, seeded):
    items = ok(api, "/v1/prices/disparity", commodity="beras")["items"]
    assert [(i["bucket_start"], round(i["ratio"], 4), i["difference_idr"]) for i in items] == [
        ("2026-03-03T00:00:00+07:00", round(14300 / 12100, 4), 2200),
        ("2026-03-02T00:00:00+07:00", round(14000 / 12000, 4), 2000),
    ]
    assert items[1]["difference_pct"] == pytest.approx(16.667, abs=0.001)


def test_unknown_codes_and_bad_filters_are_refused_naming_them(api, seeded):
    cases = [
        ("/v1/prices/history", {"commodity": "kopi"}, "unknown commodity 'kopi'"),
        ("/v1/prices/latest", {"market": "pasar_baru"}, "unknown market 'pasar_baru'"),
        ("/v1/prices/history", {"commodity": "beras", "province": "99"}, "unknown BPS province code '99'"),
        ("/v1/prices/history", {"commodity": "beras", "bucket": "month"}, "hour"),
        ("/v1/prices/history", {"commodity": "beras", "from": "2026-03-02T00:00:00"}, "with its offset"),
        ("/v1/prices/history", {"commodity": "beras", "comodity": "beras"}, "unknown query parameter(s) ['comodity']"),
        (
            "/v1/prices/history",
            {"commodity": "beras", "from": "2026-03-05T00:00:00+07:00", "to": "2026-03-01T00:00:00+07:00"},
            "must be before",
        ),
        ("/v1/supply/arrivals", {"destination": "pasar_smep"}, "no supply destination"),
        ("/v1/alerts", {"place": "atlantis"}, "unknown place 'atlantis'"),
        ("/v1/alerts", {"cursor": "bm90IGEgY3Vyc29y"}, "cursor is not valid"),
    ]
    for path, params, message in cases:
        response = get(api, path, **params)
        assert response.status_code == 422, (path, params, response.text)
        assert message in response.text, (path, params, response.text)


# --- supply -------------------------------------------------------------------------------------


def test_arrivals_are_counted_against_the_daily_requirement(api, seeded):
    [day] = ok(api, "/v1/supply/arrivals", commodity="beras", destination="pibc")["items"]
    assert day["bucket_start"] == "2026-03-02T00:00:00+07:00"
    assert (day["shipments"], day["arrived_kg"], day["requirement_kg"]) == (1, 8000, 2_900_000)
    assert day["pct_of_requirement"] == pytest.approx(0.28, abs=0.01)


def test_shipments_on_the_way_are_grouped_by_stage_with_the_late_ones_counted(api, seeded):
    groups = ok(api, "/v1/supply/in-transit", commodity="beras")
    assert [
        (g["stage"], g["last_checkpoint"], g["shipments"], g["quantity_kg"], g["delayed_shipments"]) for g in groups
    ] == [("dispatched", None, 1, 5000, 0), ("in_transit", "bakauheni_port", 1, 10000, 1)]


def test_delayed_shipments_list_the_late_truck_with_its_delay(api, seeded):
    [late] = ok(api, "/v1/supply/delayed", destination="pibc")["items"]
    assert late["shipment_id"] == S2 and late["delay_minutes"] == 180
    assert late["eta"] == "2026-03-02T22:00:00+07:00" and late["planned_eta"] == "2026-03-02T19:00:00+07:00"
    assert S3 not in str(ok(api, "/v1/supply/delayed")["items"])


def test_days_of_cover_counts_the_load_on_the_way_and_just_arrived(api, seeded):
    [rice] = ok(api, "/v1/supply/days-of-cover", commodity="beras", destination="pibc")
    assert rice["as_of"] == "2026-03-02T17:00:00+07:00"
    assert (rice["in_transit_kg"], rice["arrived_last_24h_kg"]) == (15000, 8000)
    assert rice["days_of_cover"] == pytest.approx(23000 / 2_900_000, abs=0.001)
    chili = ok(api, "/v1/supply/days-of-cover", commodity="cabai_merah")
    assert [(c["destination"], c["days_of_cover"], c["as_of"]) for c in chili] == [("pikj", 0, None)]


# --- alerts -------------------------------------------------------------------------------------


def alert_ids(api, **params: object) -> list[str]:
    return [a["alert_id"] for a in ok(api, "/v1/alerts", **params)["items"]]


def test_alerts_filter_by_status_type_severity_commodity_place_and_time(api, seeded):
    spike, gap, route = (seeded["stories"][name].alert_id for name in ("spike", "gap", "route"))
    assert alert_ids(api) == [route, gap, spike]  # newest opened first
    assert alert_ids(api, status="open") == [route, gap]
    assert alert_ids(api, status="resolved") == [spike]
    assert alert_ids(api, alert_type=["supply_gap", "price_spike"]) == [gap, spike]
    assert alert_ids(api, severity="watch") == [gap]
    assert alert_ids(api, commodity="beras") == [gap, spike]
    assert alert_ids(api, place="31") == [gap, spike]  # Cipinang is in DKI Jakarta
    assert alert_ids(api, place="merak_port") == [route]
    assert alert_ids(api, **{"from": "2026-03-08T00:00:00+07:00"}) == [route, gap]  # the spike ended on the 7th
    assert alert_ids(api, **{"to": "2026-03-04T00:00:00+07:00"}) == [spike]


def test_one_alert_shows_its_whole_history_with_evidence(api, seeded):
    spike = seeded["stories"]["spike"]
    alert = ok(api, f"/v1/alerts/{spike.alert_id}")
    assert (alert["status"], alert["severity"], alert["previous_severity"]) == ("resolved", "normal", "crisis")
    assert alert["resolved_at"] == "2026-03-07T09:00:00+07:00"
    assert alert["place"] == {"kind": "market", "code": "pibc", "name": "Pasar Induk Beras Cipinang"}
    assert [(h["event_type"], h["severity"]) for h in alert["history"]] == [
        ("AlertOpened", "alert"),
        ("AlertUpdated", "crisis"),
        ("AlertResolved", "normal"),
    ]
    assert alert["history"][1]["evidence"]["signals"][0]["name"] == "change_7d_pct"
    assert [h["event_id"] for h in alert["history"]] == [e.event_id for e in seeded["alerts"][:3]]
    assert get(api, "/v1/alerts/00000000-0000-0000-0000-000000000000").status_code == 404


# --- reference data and CSV -----------------------------------------------------------------------


def test_reference_data_lists_every_code_the_filters_take(api):
    assert "beras" in {c["code"] for c in ok(api, "/v1/reference/commodities")}
    assert {"pibc", "pikj", "prov_31"} <= {m["code"] for m in ok(api, "/v1/reference/markets")}
    assert len(ok(api, "/v1/reference/regencies")) == 15
    checkpoints = ok(api, "/v1/reference/checkpoints")
    assert [c["code"] for c in checkpoints["checkpoints"]] == ["bakauheni_port", "ferry_crossing", "merak_port"]
    assert checkpoints["routes"][0]["legs"][0]["from"] == "origin"


def test_a_table_comes_as_csv_on_request(api, seeded):
    with api.client() as client:
        by_param = client.get(
            "/v1/prices/history", params={"commodity": "beras", "market": "pasar_smep", "format": "csv"}
        )
        by_accept = client.get(
            "/v1/prices/history", params={"commodity": "beras", "market": "pasar_smep"}, headers={"Accept": "text/csv"}
        )
        paged = client.get("/v1/alerts", params={"format": "csv", "limit": 1})
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_param.text == by_accept.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    assert [(r["bucket_start"], r["avg_price_idr"], r["reference_price.price_idr"]) for r in rows][0] == (
        "2026-03-09T00:00:00+07:00",
        "14000.0",
        "13500.0",
    )
    assert 'rel="next"' in paged.headers["link"]
    assert len(list(csv.DictReader(io.StringIO(paged.text)))) == 1


def test_plain_postgresql_without_timescaledb_gives_the_same_buckets(plain_database, start_api, api):
    from pantau.db import migrate
    from tests.integration.api.data import seed

    migrate(plain_database)
    seed(plain_database)
    plain = start_api(plain_database)
    seed(api.app.state.settings)
    for params in (
        {"commodity": "beras", "bucket": "week"},
        {"commodity": "beras", "bucket": "day", "province": "18"},
        {"commodity": "beras", "bucket": "hour", "market": "pibc"},
    ):
        on_plain = ok(plain, "/v1/prices/history", **params)
        assert on_plain["items"], params
        assert on_plain == ok(api, "/v1/prices/history", **params)
    assert ok(plain, "/v1/prices/disparity", commodity="beras") == ok(api, "/v1/prices/disparity", commodity="beras")
    assert ok(plain, "/v1/supply/arrivals", commodity="beras") == ok(api, "/v1/supply/arrivals", commodity="beras")
