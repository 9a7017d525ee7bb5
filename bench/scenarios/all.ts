/**
 * Every scenario, in table order.
 *
 * @module
 */
import { coldHerd } from "./cold_herd.ts";
import { expiryEdge } from "./expiry_edge.ts";
import { fetchOverhead } from "./fetch_overhead.ts";
import { hotPath } from "./hot_path.ts";
import { rotation } from "./rotation.ts";
import type { Scenario } from "./scenario.ts";
import { storm } from "./storm.ts";

/** Scenarios 1 to 6 (7, fleet mode, runs apart: bench/scenarios/fleet.ts). */
export const SCENARIOS: readonly Scenario[] = [
  hotPath,
  coldHerd,
  rotation(true),
  rotation(false),
  storm,
  expiryEdge,
  fetchOverhead,
];

/** Scenario 7's row: fleet mode runs apart, for this module only (the others share nothing across processes). */
export const FLEET_NOT_BUILT =
  "see Fleet mode (fleet.md, bench/scenarios/fleet.ts): many processes, this module only";
