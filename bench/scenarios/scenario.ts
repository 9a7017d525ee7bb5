/**
 * What a scenario is, the sizes it runs at, and the emulator set-up every
 * scenario shares, so all contenders meet the same emulator.
 *
 * @module
 */
import {
  type Clock,
  type GenesysEmulator,
  type GenesysEmulatorOptions,
  startGenesysEmulator,
} from "../../testing.ts";
import type {
  BenchCredential,
  Contender,
  ContenderFactory,
} from "../contenders/contender.ts";

/** One figure a scenario reports per contender. */
export interface FigureSpec {
  /** Key in the results. */
  readonly key: string;
  /** Column heading. */
  readonly label: string;
  /** Decimal places shown. */
  readonly digits: number;
  /** Set when the figure does not apply to one-credential contenders. */
  readonly needsTwoCredentials?: boolean;
}

/** One run's figures, by {@linkcode FigureSpec.key}. */
export type Figures = Record<string, number>;

/** A benchmark scenario. */
export interface Scenario {
  /** Its number and short name, such as `1. hot path`. */
  readonly title: string;
  /** What its figures mean, for the report. */
  readonly description: string;
  /** Its figures, in column order. */
  readonly figures: readonly FigureSpec[];
  /** Runs once for one contender. */
  run(factory: ContenderFactory, size: BenchSize): Promise<Figures>;
}

/** Request counts and concurrency; the same for every contender. */
export interface BenchSize {
  /** Hot path: batches measured (interleaved with the baseline). */
  readonly hotBatches: number;
  /** Hot path: calls per batch. */
  readonly hotBatchSize: number;
  /** Cold herd: concurrent first calls. */
  readonly herd: number;
  /** Rotation: requests in all. */
  readonly rotationRequests: number;
  /** Rotation: workers. */
  readonly rotationWorkers: number;
  /** Storm: requests in all. */
  readonly stormRequests: number;
  /** Storm: workers. */
  readonly stormWorkers: number;
  /** Storm: how long each of the 503 and the 429 phases lasts, in ms. */
  readonly stormPhaseMs: number;
  /** Expiry edge: rounds. */
  readonly expiryRounds: number;
  /** Expiry edge: concurrent requests per round. */
  readonly expiryWorkers: number;
  /** Fetch overhead: requests per measurement. */
  readonly fetchRequests: number;
  /** Fetch overhead: workers. */
  readonly fetchWorkers: number;
  /** Fetch overhead: alternating raw/library pairs. */
  readonly fetchRepeats: number;
}

/** The sizes of a full run. */
export const FULL_SIZE: BenchSize = Object.freeze({
  hotBatches: 200,
  hotBatchSize: 1_000,
  herd: 100_000,
  rotationRequests: 4_000,
  rotationWorkers: 20,
  stormRequests: 1_000,
  stormWorkers: 20,
  stormPhaseMs: 1_000,
  expiryRounds: 400,
  expiryWorkers: 10,
  fetchRequests: 500,
  fetchWorkers: 16,
  fetchRepeats: 15,
});

/** The sizes of `--quick`: a smoke run, figures only indicative. */
export const QUICK_SIZE: BenchSize = Object.freeze({
  hotBatches: 20,
  hotBatchSize: 500,
  herd: 10_000,
  rotationRequests: 400,
  rotationWorkers: 10,
  stormRequests: 100,
  stormWorkers: 10,
  stormPhaseMs: 200,
  expiryRounds: 80,
  expiryWorkers: 5,
  fetchRequests: 200,
  fetchWorkers: 8,
  fetchRepeats: 2,
});

/** The active OAuth client at start. */
export const BLUE: BenchCredential = Object.freeze({
  label: "blue",
  clientId: "blue-id",
  secret: "blue-secret",
});
/** The standby OAuth client. */
export const GREEN: BenchCredential = Object.freeze({
  label: "green",
  clientId: "green-id",
  secret: "green-secret",
});

/** An emulator with blue and green, and one contender pointed at it. */
export interface Bench extends AsyncDisposable {
  /** The emulator. */
  readonly emulator: GenesysEmulator;
  /** The contender. */
  readonly contender: Contender;
  /** `GET /api/v2/tokens/me` on the emulator. */
  readonly tokensMeUrl: string;
}

/** Options of {@linkcode startBench}. */
export interface BenchOptions {
  /** Emulator switches (revocation, clock). */
  readonly emulator?: Omit<GenesysEmulatorOptions, "clients">;
  /** Token lifetime of both clients, in seconds; default Genesys' 86400. */
  readonly tokenLifetimeSeconds?: number;
  /** The clock injected into the contender (and the emulator). */
  readonly clock?: Clock;
}

/**
 * Starts a fresh emulator and a fresh contender on it.
 *
 * @param factory The contender kind (already loaded).
 * @param options Emulator and clock options.
 * @returns Both; dispose to close them.
 */
export function startBench(
  factory: ContenderFactory,
  options: BenchOptions = {},
): Bench {
  const emulator = startGenesysEmulator({
    ...options.emulator,
    ...(options.clock ? { clock: options.clock } : {}),
    clients: [BLUE, GREEN].map((c) => ({
      clientId: c.clientId,
      secret: c.secret,
      ...(options.tokenLifetimeSeconds
        ? { tokenLifetimeSeconds: options.tokenLifetimeSeconds }
        : {}),
    })),
  });
  const contender = factory.create({
    origin: emulator.url,
    tokenUrl: emulator.tokenUrl,
    credentials: [BLUE, GREEN],
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const close = async () => {
    await contender.close();
    await emulator.close();
  };
  return {
    emulator,
    contender,
    tokensMeUrl: `${emulator.apiUrl}/api/v2/tokens/me`,
    [Symbol.asyncDispose]: close,
  };
}
