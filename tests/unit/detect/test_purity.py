"""The processor keeps states in tables and relies on this: a step returns a new state and never
changes the one it was given, whatever the input."""

from __future__ import annotations

import copy
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pantau.detect.conditions import Rejected
from pantau.detect.lifecycle import AlertState, step_lifecycle, tick_lifecycle
from pantau.detect.price import PriceObservation, PriceState, step_price
from pantau.detect.supply import ShipmentState

from .conftest import START, at

prices = st.one_of(st.floats(min_value=-100.0, max_value=400_000.0), st.just(float("nan")), st.just(13_000.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=60), st.integers(0, 23), prices), max_size=80))
def test_price_and_lifecycle_steps_never_change_the_state_they_are_given(price_config, lifecycle_config, events):
    state, alert = None, None
    for day, hour, price in sorted(events, key=lambda e: e[0]):
        obs = PriceObservation("beras", "pibc", price, at(START + timedelta(days=day), hour), province_code="31")
        before = copy.deepcopy(state)
        new_state, result = step_price(state, obs, price_config)
        assert state == before
        if isinstance(result, Rejected):
            assert new_state == (state if state is not None else PriceState())  # rejected: nothing learnt
        state = new_state
        for condition in [] if isinstance(result, Rejected) else result:
            alert_before = copy.deepcopy(alert)
            new_alert, _ = step_lifecycle(alert, condition, lifecycle_config)
            assert alert == alert_before
            ticked_before = copy.deepcopy(new_alert)
            tick_lifecycle(new_alert, condition.observed_at + timedelta(days=30), lifecycle_config)
            assert new_alert == ticked_before
            alert = new_alert


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=60), st.integers(0, 23), prices), max_size=80))
def test_stepping_in_place_gives_what_stepping_copies_gives(price_config, lifecycle_config, events):
    """The processor steps a key's own copy in place (in_place=True) within a batch."""
    state, alert = None, None
    own_state, own_alert = PriceState(), None
    for day, hour, price in sorted(events, key=lambda e: e[0]):
        obs = PriceObservation("beras", "pibc", price, at(START + timedelta(days=day), hour), province_code="31")
        state, result = step_price(state, obs, price_config)
        own_state, own_result = step_price(own_state, obs, price_config, in_place=True)
        assert own_result == result
        assert own_state == state
        for condition in [] if isinstance(result, Rejected) else result:
            alert, transitions = step_lifecycle(alert, condition, lifecycle_config)
            own_alert, own_transitions = step_lifecycle(own_alert, condition, lifecycle_config, in_place=True)
            assert own_transitions == transitions
            assert own_alert == alert


def test_an_alert_state_copy_keeps_every_field():
    values = {name: f"value-{i}" for i, name in enumerate(AlertState.__slots__)}
    state = AlertState(**values)
    copied = state.copy()
    assert copied is not state
    assert {name: getattr(copied, name) for name in AlertState.__slots__} == values


def test_a_shipment_state_copy_keeps_every_field_and_owns_its_route():
    values = {name: f"value-{i}" for i, name in enumerate(ShipmentState.__slots__)}
    values["route"] = [["bakauheni_port", 1, 100.0], ["merak_port", 2, 200.0]]
    state = ShipmentState(**values)
    copied = state.copy()
    assert {name: getattr(copied, name) for name in ShipmentState.__slots__} == values
    copied.route[0][1] = 9  # stepping the copy leaves the original as it was
    assert state.route[0][1] == 1
