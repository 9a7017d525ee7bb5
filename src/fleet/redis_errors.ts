/**
 * The Redis fleet engine's errors and their stable codes, owned here (the
 * core's `code` is a plain string). Kept apart from the engine, so that they
 * load without the Redis client.
 *
 * @module
 */
import { DualSecretAuthError } from "../errors.ts";

/** The stable codes of the Redis engine's errors. */
export const RedisErrorCode: {
  readonly REDIS_AUTH_FAILED: "REDIS_AUTH_FAILED";
  readonly REDIS_NO_PERMISSION: "REDIS_NO_PERMISSION";
  readonly REDIS_UNAVAILABLE: "REDIS_UNAVAILABLE";
} = Object.freeze(
  {
    REDIS_AUTH_FAILED: "REDIS_AUTH_FAILED",
    REDIS_NO_PERMISSION: "REDIS_NO_PERMISSION",
    REDIS_UNAVAILABLE: "REDIS_UNAVAILABLE",
  } as const,
);

/** One of the values of {@linkcode RedisErrorCode}. */
export type RedisErrorCode = typeof RedisErrorCode[keyof typeof RedisErrorCode];

/**
 * Redis refused the username or password (`WRONGPASS`, `NOAUTH`). The fleet
 * keeps serving from each instance's own cache and reconnects with backoff,
 * so fixing the ACL (or the URL) brings it back without a restart.
 */
export class RedisAuthError extends DualSecretAuthError {
  /** Always {@linkcode RedisErrorCode.REDIS_AUTH_FAILED}. */
  declare readonly code: typeof RedisErrorCode.REDIS_AUTH_FAILED;
  /** The user name that was refused (`default` when none was given). */
  readonly username: string;

  /**
   * Creates the error.
   *
   * @param username The user that was refused.
   * @param options The server's reply, as cause.
   */
  constructor(username: string, options?: ErrorOptions) {
    super(
      RedisErrorCode.REDIS_AUTH_FAILED,
      `Redis refused the credentials of user "${username}". Check the user and password in the Redis URL ` +
        `(redis://user:password@host:port) or the username/password options against the server's ACL ` +
        `(redis-cli ACL LIST); until then each instance serves from its own cache.`,
      options,
    );
    this.username = username;
  }
}

/** The Redis user lacks a command, key or channel the fleet needs (`NOPERM`). */
export class RedisPermissionError extends DualSecretAuthError {
  /** Always {@linkcode RedisErrorCode.REDIS_NO_PERMISSION}. */
  declare readonly code: typeof RedisErrorCode.REDIS_NO_PERMISSION;

  /**
   * Creates the error.
   *
   * @param prefix The fleet's key prefix.
   * @param options The server's reply, as cause.
   */
  constructor(prefix: string, options?: ErrorOptions) {
    super(
      RedisErrorCode.REDIS_NO_PERMISSION,
      `The Redis user may not run what the fleet needs. Grant it at least ` +
        `"~{${prefix}}:* &{${prefix}}:* +@read +@write +@scripting +@pubsub +@connection" in its ACL.`,
      options,
    );
  }
}

/** Redis is not connected (down, restarting, unreachable); the instance serves on its own meanwhile. */
export class RedisUnavailableError extends DualSecretAuthError {
  /** Always {@linkcode RedisErrorCode.REDIS_UNAVAILABLE}. */
  declare readonly code: typeof RedisErrorCode.REDIS_UNAVAILABLE;

  /**
   * Creates the error.
   *
   * @param detail What the client said, such as `connection refused`.
   * @param options The client's error, as cause.
   */
  constructor(detail: string, options?: ErrorOptions) {
    super(
      RedisErrorCode.REDIS_UNAVAILABLE,
      `Redis is not connected (${detail}); the client reconnects with backoff and the instance serves from its own cache meanwhile.`,
      options,
    );
  }
}
