"""The processor keeps states in tables and relies on this: a step returns a new state and never
changes the one it was given, whatever the input."""

from __future__ import annotations

import copy
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pantau.detect.conditions import Rejected
from pantau.detect.lifecycle import step_lifecycle, tick_lifecycle
from pantau.detect.price import PriceObservation, PriceState, step_price

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
