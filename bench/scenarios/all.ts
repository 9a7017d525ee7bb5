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

/** Scenarios 1 to 6 (7, fleet mode, is reported as not built). */
export const SCENARIOS: readonly Scenario[] = [
  hotPath,
  coldHerd,
  rotation(true),
  rotation(false),
  storm,
  expiryEdge,
  fetchOverhead,
];

/** Scenario 7's row: fleet mode does not exist yet. */
export const FLEET_NOT_BUILT = "n/a (fleet mode not built yet)";
