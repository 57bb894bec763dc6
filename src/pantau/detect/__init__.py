"""Pure detection logic: price spikes, price disparity, supply gaps, route disruptions, unshipped
harvests, and the alert lifecycle. No I/O here: processors feed observations in and publish what
comes out. Every step is `new_state, result = step(state, input, config)`; the input state is never
changed; states serialise with `to_json()` / `Type.from_json()` and stay bounded.

Steps, their state (and the table key it needs) and results:
- price.step_price(state, obs, cfg): PriceState, key `{commodity}:{market_code}`;
  [Condition] | Invalid | TooLate.
- disparity.step_disparity(state, obs, pair, cfg): DisparityState, key `{commodity}:{num}:{den}`;
  [Condition] | Invalid.
- supply.step_shipment(state, event): ShipmentState, key shipment_id; ShipmentStatus | None | Invalid.
- supply.step_supply / tick_supply: SupplyState, key `{commodity}:{destination}`; [Condition].
- supply.step_route / tick_route: RouteState, key `{checkpoint}`; [Condition].
- supply.step_harvest / tick_harvest: HarvestState, key `{regency_code}:{commodity}`; [Condition] | Invalid.
  Each supply, route and harvest step is apply_* then judge_*: a processor applies a batch's records
  and judges the key once (judging scans every shipment in transit).
- lifecycle.step_lifecycle / tick_lifecycle: AlertState, key condition.subject; [Transition].

Configs come from the reference data via `pantau.detect.config` (price_config, disparity_config,
supply_targets, supply_config, lifecycle_config). `evaluate` replays real PIHPS series; `bench` times the price
step.
"""
