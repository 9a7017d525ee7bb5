/**
 * `close()` stops calls with an `AbortedError` whose code is `CLOSED`; tests
 * check for exactly that with `instanceof ClosedError`.
 *
 * @module
 */
import { AbortedError, ErrorCode } from "../../src/errors.ts";

/** Matches (`instanceof`) an `AbortedError` with code `CLOSED`. */
export const ClosedError: {
  [Symbol.hasInstance](value: unknown): value is AbortedError;
} = {
  [Symbol.hasInstance]: (value: unknown): value is AbortedError =>
    value instanceof AbortedError && value.code === ErrorCode.CLOSED,
};
