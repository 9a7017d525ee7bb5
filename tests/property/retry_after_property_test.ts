/**
 * Properties of `parseRetryAfter`: the wait it returns is never negative or
 * NaN; delay-seconds and HTTP dates round-trip; anything else is `undefined`.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseRetryAfter } from "../../src/retry.ts";
import { CaseCounter, propertyParameters } from "./fc_parameters.ts";

/** A wall-clock time the library might run at: whole ms in years 1970–9999. */
const now = fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) });

/** Whitespace a header value may carry around it. */
const padding = fc.constantFrom("", " ", "  ", "\t", " \t ");

/** A time HTTP dates can express: whole seconds, years 1970–9999. */
const httpTime = fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) / 1000 })
  .map((seconds) => seconds * 1000);

/** Header values that are neither delay-seconds nor an HTTP date. */
const garbage = fc.oneof(
  fc.string().filter((s) => !/^\s*\d+\s*$/.test(s) && !/GMT\s*$/.test(s)),
  fc.integer({ max: -1 }).map(String),
  fc.double({ noNaN: true }).filter((n) => !Number.isInteger(n)).map(String),
  fc.integer({ min: 1 }).map((n) => `+${n}`),
  fc.integer({ min: 1 }).map((n) => `0x${n.toString(16)}`),
  fc.integer({ min: 1, max: 1_000_000 }).map((n) => `${n}s`),
  fc.integer({ min: 1, max: 1_000_000 }).map((n) => `${n} seconds`),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.constantFrom("", " ", "soon", "NaN", "Infinity", "1e3", "null"),
);

Deno.test("parseRetryAfter properties", async (t) => {
  await t.step("any text: undefined or a finite wait ≥ 0", () => {
    const cases = new CaseCounter();
    const anyValue = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      garbage,
      fc.nat().map(String),
      httpTime.map((time) => new Date(time).toUTCString()),
    );
    fc.assert(
      fc.property(anyValue, now, (value, at) => {
        cases.tick();
        const wait = parseRetryAfter(value, at);
        if (wait === undefined) return;
        assert.equal(typeof wait, "number");
        assert.ok(!Number.isNaN(wait), `NaN for ${JSON.stringify(value)}`);
        assert.ok(
          Number.isFinite(wait),
          `${wait} for ${JSON.stringify(value)}`,
        );
        assert.ok(wait >= 0, `${wait} for ${JSON.stringify(value)}`);
      }),
      propertyParameters(2_000),
    );
    assert.ok(cases.count >= 2_000);
  });

  await t.step("delay-seconds round-trip to milliseconds", () => {
    const cases = new CaseCounter();
    const seconds = fc.oneof(
      fc.nat({ max: 86_400 }),
      fc.maxSafeNat(),
    );
    const leadingZeros = fc.nat({ max: 3 }).map((n) => "0".repeat(n));
    fc.assert(
      fc.property(
        seconds,
        leadingZeros,
        padding,
        padding,
        now,
        (value, zeros, before, after, at) => {
          cases.tick();
          const text = `${before}${zeros}${value}${after}`;
          assert.equal(parseRetryAfter(text, at), value * 1000);
        },
      ),
      propertyParameters(1_500),
    );
    assert.ok(cases.count >= 1_500);
  });

  await t.step("HTTP dates round-trip to the wait until them", () => {
    const cases = new CaseCounter();
    fc.assert(
      fc.property(httpTime, now, padding, (time, at, pad) => {
        cases.tick();
        const header = `${pad}${new Date(time).toUTCString()}${pad}`;
        assert.equal(parseRetryAfter(header, at), Math.max(0, time - at));
      }),
      propertyParameters(1_500),
    );
    assert.ok(cases.count >= 1_500);
  });

  await t.step("garbage and absent values give undefined", () => {
    const cases = new CaseCounter();
    fc.assert(
      fc.property(
        fc.oneof(garbage, fc.constant(null), fc.constant(undefined)),
        now,
        (value, at) => {
          cases.tick();
          assert.equal(parseRetryAfter(value, at), undefined);
        },
      ),
      propertyParameters(1_500),
    );
    assert.ok(cases.count >= 1_500);
  });
});

Deno.test({
  name: "parseRetryAfter accepts the obsolete HTTP date formats",
  fn: () => {
    const cases = new CaseCounter();
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(1970, 0, 1), max: Date.UTC(2049, 11, 31) })
          .map((ms) => Math.floor(ms / 1000) * 1000),
        now,
        (time, at) => {
          cases.tick();
          for (const header of [rfc850(time), asctime(time)]) {
            assert.equal(
              parseRetryAfter(header, at),
              Math.max(0, time - at),
              header,
            );
          }
        },
      ),
      propertyParameters(500),
    );
    assert.ok(cases.count >= 500);
  },
});

const WEEKDAYS = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
];
const MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];

function clockText(date: Date): string {
  return [date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds()]
    .map((n) => String(n).padStart(2, "0")).join(":");
}

/** `Sunday, 06-Nov-94 08:49:37 GMT` (two-digit years, so 1970–2049). */
function rfc850(time: number): string {
  const date = new Date(time);
  const day = String(date.getUTCDate()).padStart(2, "0");
  const year = String(date.getUTCFullYear() % 100).padStart(2, "0");
  return `${WEEKDAYS[date.getUTCDay()]}, ${day}-${
    MONTHS[date.getUTCMonth()]
  }-${year} ${clockText(date)} GMT`;
}

/** `Sun Nov  6 08:49:37 1994`. */
function asctime(time: number): string {
  const date = new Date(time);
  const day = String(date.getUTCDate()).padStart(2, " ");
  return `${WEEKDAYS[date.getUTCDay()].slice(0, 3)} ${
    MONTHS[date.getUTCMonth()]
  } ${day} ${clockText(date)} ${date.getUTCFullYear()}`;
}
