/**
 * The emulator's API usage log and the OAuth client usage queries
 * (`POST .../usage/query`, `GET .../usage/summary`, then the results by
 * execution id). As on Genesys, usage is counted per UTC day and a day's
 * counts become visible only once it is over (Genesys updates them at
 * midnight in the region): a query can never tell whether a client is in use
 * right now.
 *
 * @module
 */

const DAY_MS = 86_400_000;

/** The metrics a usage row can carry, as the query names them. */
const METRICS = [
  "Status200",
  "Status300",
  "Status400",
  "Status500",
  "Status429",
  "Requests",
] as const;
type Metric = typeof METRICS[number];

/** The dimensions a usage query can group by. */
const DIMENSIONS = [
  "OAuthClientId",
  "OrganizationId",
  "UserId",
  "TemplateUri",
  "HttpMethod",
] as const;
type Dimension = typeof DIMENSIONS[number];

const GRANULARITIES = ["Day", "Week", "Month"] as const;
type Granularity = typeof GRANULARITIES[number];

/** The counts of one client, day, method and route. */
interface UsageCell {
  readonly clientId: string;
  readonly day: number;
  readonly templateUri: string;
  readonly httpMethod: string;
  status200: number;
  status300: number;
  status400: number;
  status500: number;
  status429: number;
  requests: number;
}

/** A checked usage query: the interval and how to aggregate. */
export interface UsageQuery {
  readonly from: number;
  readonly to: number;
  readonly granularity?: Granularity;
  readonly metrics: readonly Metric[];
  readonly groupBy: readonly Dimension[];
}

/** One row of a usage query's results (Genesys's `ApiUsageRow`). */
export type UsageRow = Record<string, string | number>;

/** Who the rows are about, for the `clientName` and `organizationId` columns. */
export interface UsageSubject {
  readonly clientId: string;
  readonly clientName: string;
  readonly organizationId: string;
}

interface Execution {
  readonly clientId: string;
  readonly rows: readonly UsageRow[];
  runningPolls: number;
}

/** Start of the UTC day of `time`. */
export function dayOf(time: number): number {
  return Math.floor(time / DAY_MS) * DAY_MS;
}

/** Counts API requests and answers usage queries on them. */
export class UsageLog {
  readonly #cells = new Map<string, UsageCell>();
  readonly #executions = new Map<string, Execution>();
  readonly #runningPolls: number;

  constructor(runningPolls: number) {
    this.#runningPolls = runningPolls;
  }

  /** Counts one answered API request of a client. */
  record(
    clientId: string,
    time: number,
    httpMethod: string,
    templateUri: string,
    status: number,
  ): void {
    const day = dayOf(time);
    const key = JSON.stringify([clientId, day, httpMethod, templateUri]);
    let cell = this.#cells.get(key);
    if (!cell) {
      cell = {
        clientId,
        day,
        templateUri,
        httpMethod,
        status200: 0,
        status300: 0,
        status400: 0,
        status500: 0,
        status429: 0,
        requests: 0,
      };
      this.#cells.set(key, cell);
    }
    cell.requests++;
    if (status === 429) cell.status429++;
    else if (status >= 500) cell.status500++;
    else if (status >= 400) cell.status400++;
    else if (status >= 300) cell.status300++;
    else cell.status200++;
  }

  /**
   * Runs a query on the days that are over at `now` and keeps its rows under
   * a new execution id.
   */
  execute(subject: UsageSubject, query: UsageQuery, now: number): string {
    const cutoff = dayOf(now);
    const first = dayOf(query.from);
    const cells = [...this.#cells.values()].filter((cell) =>
      cell.clientId === subject.clientId && cell.day >= first &&
      cell.day < query.to && cell.day < cutoff
    );
    const executionId = crypto.randomUUID();
    this.#executions.set(executionId, {
      clientId: subject.clientId,
      rows: aggregate(cells, subject, query),
      runningPolls: this.#runningPolls,
    });
    return executionId;
  }

  /**
   * The results of an execution of `clientId`'s usage, or `undefined` when
   * there is no such execution for that client.
   */
  results(
    clientId: string,
    executionId: string,
  ): { queryStatus: string; results?: UsageRow[] } | undefined {
    const execution = this.#executions.get(executionId);
    if (!execution || execution.clientId !== clientId) return undefined;
    if (execution.runningPolls > 0) {
      execution.runningPolls--;
      return { queryStatus: "Running" };
    }
    return {
      results: execution.rows.map((row) => ({ ...row })),
      queryStatus: "Complete",
    };
  }
}

function aggregate(
  cells: readonly UsageCell[],
  subject: UsageSubject,
  query: UsageQuery,
): UsageRow[] {
  const groups = new Map<string, { row: UsageRow; totals: UsageCell[] }>();
  for (const cell of cells) {
    const row: UsageRow = {};
    for (const dimension of query.groupBy) {
      switch (dimension) {
        case "OAuthClientId":
          row.clientId = subject.clientId;
          row.clientName = subject.clientName;
          break;
        case "OrganizationId":
          row.organizationId = subject.organizationId;
          break;
        case "UserId":
          // Client-credentials tokens have no user: the column stays empty.
          break;
        case "TemplateUri":
          row.templateUri = cell.templateUri;
          break;
        case "HttpMethod":
          row.httpMethod = cell.httpMethod;
          break;
      }
    }
    if (query.granularity) {
      row.date = new Date(bucketOf(cell.day, query.granularity)).toISOString();
    }
    const key = JSON.stringify(row);
    const group = groups.get(key) ?? { row, totals: [] };
    group.totals.push(cell);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ row, totals }) => {
    for (const metric of query.metrics) {
      const field = metricField(metric);
      row[field] = totals.reduce((sum, cell) => sum + cell[field], 0);
    }
    return row;
  });
}

function metricField(metric: Metric): Exclude<
  keyof UsageCell,
  "clientId" | "day" | "templateUri" | "httpMethod"
> {
  switch (metric) {
    case "Status200":
      return "status200";
    case "Status300":
      return "status300";
    case "Status400":
      return "status400";
    case "Status500":
      return "status500";
    case "Status429":
      return "status429";
    case "Requests":
      return "requests";
  }
}

/** The start of the day, ISO week (Monday) or month a day falls in. */
function bucketOf(day: number, granularity: Granularity): number {
  if (granularity === "Day") return day;
  const date = new Date(day);
  if (granularity === "Month") {
    return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
  }
  return day - ((date.getUTCDay() + 6) % 7) * DAY_MS;
}

/**
 * Checks an `ApiUsageClientQuery` body; the answer is the query, or the
 * message of a 400 `bad.request`.
 */
export function readUsageQuery(body: unknown): UsageQuery | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "The request body must be a JSON object (ApiUsageClientQuery).";
  }
  const { interval, granularity, metrics, groupBy } = body as Record<
    string,
    unknown
  >;
  if (typeof interval !== "string") {
    return "interval is required: an ISO-8601 interval such as 2026-01-01T00:00:00Z/2026-01-08T00:00:00Z.";
  }
  const [start, end, extra] = interval.split("/");
  const from = Date.parse(start);
  const to = end === undefined ? NaN : Date.parse(end);
  if (extra !== undefined || Number.isNaN(from) || Number.isNaN(to)) {
    return `interval "${interval}" is not an ISO-8601 interval (start/end).`;
  }
  if (from >= to) return "The interval's start must be before its end.";
  const checkedGranularity = granularity === undefined
    ? undefined
    : GRANULARITIES.find((g) => g === granularity);
  if (granularity !== undefined && checkedGranularity === undefined) {
    return `granularity must be one of ${GRANULARITIES.join(", ")}.`;
  }
  const checkedMetrics = readList(metrics, METRICS, "metrics");
  if (typeof checkedMetrics === "string") return checkedMetrics;
  const checkedGroupBy = readList(groupBy, DIMENSIONS, "groupBy");
  if (typeof checkedGroupBy === "string") return checkedGroupBy;
  return {
    from,
    to,
    ...(checkedGranularity ? { granularity: checkedGranularity } : {}),
    metrics: checkedMetrics.length === 0 ? METRICS : checkedMetrics,
    groupBy: checkedGroupBy,
  };
}

/**
 * The query behind `GET .../usage/summary?days=N`: the last `days` complete
 * days, by route and method; the answer is the query, or the message of a
 * 400 `bad.request`.
 */
export function summaryQuery(
  days: string | null,
  now: number,
): UsageQuery | string {
  const count = days === null ? 7 : Number(days);
  if (!Number.isInteger(count) || count < 1 || count > 366) {
    return `days must be a whole number from 1 to 366, got "${days}".`;
  }
  const to = dayOf(now);
  return {
    from: to - count * DAY_MS,
    to,
    metrics: METRICS,
    groupBy: ["TemplateUri", "HttpMethod"],
  };
}

function readList<T extends string>(
  value: unknown,
  allowed: readonly T[],
  field: string,
): T[] | string {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return `${field} must be an array of strings.`;
  const list: T[] = [];
  for (const entry of value) {
    const known = allowed.find((name) => name === entry);
    if (known === undefined) {
      return `${field} may hold only ${allowed.join(", ")}; got ${
        JSON.stringify(entry)
      }.`;
    }
    if (!list.includes(known)) list.push(known);
  }
  return list;
}
