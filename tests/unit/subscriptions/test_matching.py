"""A subscription receives the alert events it asked for, and every later event of those alerts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pantau.subscriptions.matching import SEVERITIES, AlertFacts, SubscriptionFilter, matches, place_codes

T0 = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
SUBSCRIBED = T0 - timedelta(days=1)


def alert(**changes: object) -> AlertFacts:
    base = AlertFacts(
        event_id="e1",
        event_type="AlertOpened",
        alert_id="a1",
        alert_type="price_spike",
        severity="alert",
        previous_severity=None,
        commodity="beras",
        place_codes=place_codes("pibc", ["31"]),
        produced_at=T0,
    )
    return replace(base, **changes)


def test_an_empty_filter_receives_every_alert():
    assert matches(SubscriptionFilter(), alert(), subscribed_at=SUBSCRIBED)


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        (SubscriptionFilter(alert_types=frozenset({"price_spike"})), True),
        (SubscriptionFilter(alert_types=frozenset({"supply_gap"})), False),
        (SubscriptionFilter(commodities=frozenset({"beras", "jagung"})), True),
        (SubscriptionFilter(commodities=frozenset({"cabai_merah"})), False),
        (SubscriptionFilter(places=frozenset({"pibc"})), True),
        (SubscriptionFilter(places=frozenset({"31"})), True),  # the market's province
        (SubscriptionFilter(places=frozenset({"pikj"})), False),
        (SubscriptionFilter(min_severity="crisis"), False),
    ],
)
def test_each_filter_lets_through_only_what_it_names(subscription, expected):
    assert matches(subscription, alert(), subscribed_at=SUBSCRIBED) is expected


def test_a_commodity_filter_refuses_an_alert_without_commodity():
    route_alert = alert(alert_type="route_disruption", commodity=None, place_codes=place_codes("merak_port"))
    rice_only = SubscriptionFilter(commodities=frozenset({"beras"}))
    assert not matches(rice_only, route_alert, subscribed_at=SUBSCRIBED)


def test_an_alert_raised_to_the_minimum_severity_is_delivered_as_it_crosses():
    crisis_only = SubscriptionFilter(min_severity="crisis")
    assert matches(
        crisis_only,
        alert(event_type="AlertUpdated", severity="crisis", previous_severity="alert"),
        subscribed_at=SUBSCRIBED,
    )


def test_the_downgrade_below_the_minimum_is_delivered_because_the_alert_was_above_it():
    crisis_only = SubscriptionFilter(min_severity="crisis")
    downgrade = alert(event_type="AlertUpdated", severity="alert", previous_severity="crisis")
    assert matches(crisis_only, downgrade, subscribed_at=SUBSCRIBED)


def test_the_resolution_of_an_alert_it_was_told_about_is_always_delivered():
    crisis_only = SubscriptionFilter(min_severity="crisis")
    resolved = alert(event_type="AlertResolved", severity="normal", previous_severity="watch")
    assert not matches(crisis_only, resolved, subscribed_at=SUBSCRIBED)
    assert matches(crisis_only, resolved, subscribed_at=SUBSCRIBED, already_notified=True)


def test_already_notified_does_not_bypass_the_subject_filters():
    other = SubscriptionFilter(commodities=frozenset({"jagung"}))
    assert not matches(other, alert(), subscribed_at=SUBSCRIBED, already_notified=True)


def test_events_produced_before_the_subscription_existed_are_not_delivered():
    assert not matches(SubscriptionFilter(), alert(), subscribed_at=T0 + timedelta(seconds=1))


def test_an_unknown_minimum_severity_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"min_severity must be one of \['watch', 'alert', 'crisis'\]"):
        SubscriptionFilter(min_severity="normal")


@given(
    floor=st.sampled_from(SEVERITIES[1:]),
    severity=st.sampled_from(SEVERITIES),
    previous=st.sampled_from((None, *SEVERITIES)),
)
def test_an_event_at_or_above_the_floor_is_always_delivered_and_one_never_reaching_it_never(floor, severity, previous):
    ranks = {s: i for i, s in enumerate(SEVERITIES)}
    event = alert(severity=severity, previous_severity=previous)
    reached = max(ranks[severity], ranks[previous] if previous else 0) >= ranks[floor]
    assert matches(SubscriptionFilter(min_severity=floor), event, subscribed_at=SUBSCRIBED) is reached


def test_a_market_alert_also_belongs_to_its_province_and_a_regency_to_its_own():
    from pantau.reference import load_reference
    from pantau.subscriptions.places import containing_places, is_known_place

    ref = load_reference()
    assert containing_places(ref, "market", "pibc") == {"pibc", "31"}
    assert containing_places(ref, "regency", "18.04") == {"18.04", "18"}
    assert containing_places(ref, "market", "not_yet_known") == {"not_yet_known"}
    assert containing_places(ref, "province", "prov_31") == {"prov_31", "31"}
    assert all(is_known_place(ref, code) for code in ("pibc", "merak_port", "18.04", "31"))
    assert not is_known_place(ref, "atlantis")


def test_a_province_holds_its_markets_regencies_and_checkpoints():
    from pantau.reference import load_reference
    from pantau.subscriptions.places import places_within

    ref = load_reference()
    lampung = places_within(ref, "18")
    assert {"prov_18", "pasar_smep", "18.04", "bakauheni_port"} <= lampung
    assert "pibc" not in lampung
    assert places_within(ref, "pibc") == {"pibc"}
