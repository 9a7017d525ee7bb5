/**
 * Zero-downtime rotation of OAuth client secrets, Genesys Cloud first and any
 * RFC 6749 client-credentials token endpoint second.
 *
 * Genesys Cloud gives an OAuth client one secret, and regenerating it replaces
 * it at once. So a service keeps two OAuth clients with the same roles (blue
 * and green) and this module keeps both live: it caches a token per
 * credential, refreshes it before it expires, shares one token request among
 * concurrent callers, retries 429/5xx/network faults with backoff (never a
 * failover for those), fails over to the standby credential only when the
 * active one is rejected, replays an API call once on a stale-token 401, and
 * switches credentials with `rotate()` only after a real token request proved
 * the new one. No secret or token appears in any error, event, status or
 * inspect output. No runtime dependencies: web-standard `fetch` only.
 *
 * @example Quick start against the bundled Genesys Cloud emulator
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret" },
 *     { clientId: "green-id", secret: "green-secret" },
 *   ],
 * });
 * await using auth = createDualSecretAuth({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   tokenUrl: emulator.tokenUrl, // or environment: "mypurecloud.com"
 * });
 *
 * const response = await auth.fetch(`${emulator.apiUrl}/api/v2/tokens/me`);
 * await response.body?.cancel();
 * if (response.status !== 200) throw new Error("unexpected");
 *
 * emulator.regenerateSecret("blue-id"); // blue's secret dies at once...
 * auth.invalidate();
 * await auth.getAccessToken(); // ...and the caller is served by green
 * if (auth.status().active !== "green") throw new Error("no failover");
 * ```
 *
 * @module
 */
export {
  type AuthStatus,
  createDualSecretAuth,
  type CredentialStatus,
  type DualSecretAuth,
  type GetAccessTokenOptions,
  type RotateOptions,
  type RotationResult,
} from "./src/dual_secret_auth.ts";
export type { CredentialInput, DualSecretAuthOptions } from "./src/config.ts";
export type { TokenAuthMethod } from "./src/token_endpoint.ts";
export type { CredentialState } from "./src/credential_slot.ts";
export { type Clock, systemClock, type TimerHandle } from "./src/clock.ts";
export { type RetryOptions } from "./src/retry.ts";
export { Secret } from "./src/secret.ts";
export {
  GENESYS_REGIONS,
  type GenesysRegion,
  resolveRegion,
} from "./src/regions.ts";
export {
  type ActiveChange,
  type CachedGrant,
  createMemorySharedState,
  type GrantRequestMode,
  type SharedCredential,
  type SharedState,
  type SharedStateContext,
} from "./src/store.ts";
export type {
  ApiRateLimitedEvent,
  ApiReplaySkippedEvent,
  AuthEvent,
  AuthEventListener,
  ErrorSummary,
  FailoverEvent,
  ReprobeEvent,
  RetryEvent,
  RotatedEvent,
  TokenAcquiredEvent,
  TokenFailedEvent,
  WarningEvent,
} from "./src/events.ts";
export {
  AbortedError,
  AllCredentialsRejectedError,
  ConfigError,
  CredentialRejectedError,
  DualSecretAuthError,
  ErrorCode,
  InvalidTokenResponseError,
  type OAuthErrorDetails,
  PermissionDeniedError,
  RateLimitedError,
  RedirectRefusedError,
  type RejectedCredentialSummary,
  RotationFailedError,
  TokenEndpointUnavailableError,
  TokenRequestError,
} from "./src/errors.ts";
export {
  type ApiRateLimitOptions,
  type AuthChallenge,
  parseWwwAuthenticate,
} from "./src/authorized_fetch.ts";
