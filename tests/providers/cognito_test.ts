/**
 * The Cognito adapter against the Cognito emulator (which checks SigV4):
 * add → prove → delete, the two-secret limit, the last secret, a missing IAM
 * action, throttling and 5xx.
 */
import assert from "node:assert/strict";
import {
  CognitoErrorCode,
  cognitoSecretProvider,
  type CognitoSecretProviderOptions,
} from "../../src/providers/cognito.ts";
import { ProviderApiError } from "../../src/providers/admin_http.ts";
import { systemClock } from "../../src/clock.ts";
import { ConfigError } from "../../src/errors.ts";
import { Secret } from "../../src/secret.ts";
import {
  type CognitoEmulatorOptions,
  startCognitoEmulator,
} from "../../src/testing/providers/cognito.ts";
import { InstantClock, NEVER_FIRES } from "../genesys/instant_clock.ts";
import { faultyFetch, prove, rejected } from "./admin_support.ts";

const POOL = "eu-west-1_TESTPOOL";
const APP = "app-client";
const OLD = "old_secret_value_of_24_chars_";
const KEY = {
  accessKeyId: "AKIAROTATOR",
  secretAccessKey: "rotator-secret-key",
};

function start(
  actions?: string[],
  secrets: string[] = [OLD],
  extra: Partial<CognitoEmulatorOptions> = {},
) {
  return startCognitoEmulator({
    userPoolId: POOL,
    clients: [{ clientId: APP, secrets }],
    principals: [{ ...KEY, ...(actions ? { actions } : {}) }],
    ...extra,
  });
}

function provider(
  apiUrl: string,
  options: Partial<CognitoSecretProviderOptions> = {},
) {
  return cognitoSecretProvider({
    userPoolId: POOL,
    apiUrl,
    getCredentials: () => Promise.resolve(KEY),
    ...options,
  });
}

Deno.test("Cognito: add a secret, prove it at the token endpoint, delete the old one (SigV4-signed)", async () => {
  await using cognito = start();
  const idp = provider(cognito.apiUrl);
  assert.equal(idp.model, "two-secrets");
  const before = await idp.inspectClient(APP);
  assert.equal(before.maxSecrets, 2);
  assert.equal(before.secrets?.length, 1);
  const [old] = before.secrets!;
  assert.equal(old.createdAt, cognito.secrets(APP)[0].createdAt);

  const issued = await idp.issueSecret(APP);
  assert.match(issued.secretId ?? "", new RegExp(`^${APP}--\\d+$`));
  const proof = {
    tokenUrl: cognito.tokenUrl,
    clientId: APP,
    clock: systemClock,
  };
  const { grant } = await prove({ ...proof, secret: issued.secret });
  assert.equal(grant.tokenType, "Bearer");
  assert.equal((await idp.inspectClient(APP)).secrets?.length, 2);

  await idp.revokeSecret!(APP, old.secretId);
  assert.deepEqual(cognito.secrets(APP).map((s) => s.secretId), [
    issued.secretId,
  ]);
  assert.equal(await rejected({ ...proof, secret: new Secret(OLD) }), true);
  // Deleting it again finds nothing to delete.
  await idp.revokeSecret!(APP, old.secretId);
  assert.equal(cognito.secrets(APP).length, 1);
});

Deno.test("Cognito: a third secret is refused (LimitExceededException), saying to delete first", async () => {
  await using cognito = start(undefined, [OLD, "second_secret_value_24_chars"]);
  const error = await provider(cognito.apiUrl).issueSecret(APP).catch((e) => e);
  assert.ok(error instanceof ProviderApiError);
  assert.equal(error.code, CognitoErrorCode.LIMIT_REACHED);
  assert.equal(error.providerCode, "LimitExceededException");
  assert.match(error.message, /maximum number of client secrets/);
  assert.match(error.message, /Delete the secret no instance uses/);
  assert.equal(cognito.secrets(APP).length, 2);
});

Deno.test("Cognito: the last secret cannot be deleted; Cognito's reason is passed on", async () => {
  await using cognito = start();
  const idp = provider(cognito.apiUrl);
  const [only] = (await idp.inspectClient(APP)).secrets!;
  const error = await idp.revokeSecret!(APP, only.secretId).catch((e) => e);
  assert.equal(error.code, CognitoErrorCode.REFUSED);
  assert.match(error.message, /only secret of app client/);
  assert.equal(cognito.secrets(APP).length, 1);
});

Deno.test("Cognito: a principal allowed only to list may inspect; adding names cognito-idp:AddUserPoolClientSecret", async () => {
  await using cognito = start(["cognito-idp:ListUserPoolClientSecrets"]);
  const idp = provider(cognito.apiUrl);
  assert.equal((await idp.inspectClient(APP)).secrets?.length, 1);
  const error = await idp.issueSecret(APP).catch((e) => e);
  assert.equal(error.code, CognitoErrorCode.FORBIDDEN);
  assert.equal(error.permission, "cognito-idp:AddUserPoolClientSecret");
  assert.match(error.message, /lacks cognito-idp:AddUserPoolClientSecret/);
  assert.equal(cognito.secrets(APP).length, 1);
});

Deno.test("Cognito: a wrong secret access key is refused as a bad signature, never quoted", async () => {
  await using cognito = start();
  const error = await provider(cognito.apiUrl, {
    getCredentials: () =>
      Promise.resolve({ ...KEY, secretAccessKey: "wrong-secret-key" }),
  }).inspectClient(APP).catch((e) => e);
  assert.equal(error.code, CognitoErrorCode.UNAUTHORIZED);
  assert.equal(error.providerCode, "InvalidSignatureException");
  assert.doesNotMatch(error.message, /wrong-secret-key/);
  assert.throws(
    () =>
      cognitoSecretProvider({
        userPoolId: "POOL",
        getCredentials: () => Promise.resolve(KEY),
      }),
    ConfigError,
  );
});

Deno.test("Cognito: TooManyRequestsException is retried until the window passes, even for an add", async () => {
  const clock = new InstantClock();
  await using cognito = start(undefined, [OLD], {
    clock,
    apiRateLimit: { limit: 1, windowSeconds: 1 },
  });
  const idp = provider(cognito.apiUrl, {
    clock,
    random: () => 1,
    requestTimeoutMs: NEVER_FIRES,
  });
  await idp.inspectClient(APP);
  const issued = await idp.issueSecret(APP);
  assert.deepEqual(clock.waits, [200, 400, 800]);
  assert.equal(cognito.secrets(APP)[1].secretId, issued.secretId);
});

Deno.test("Cognito: a 500 is retried on a list, not on an add", async () => {
  const clock = new InstantClock();
  await using cognito = start(undefined, [OLD], { clock });
  const failure = () =>
    Response.json({ __type: "InternalErrorException" }, { status: 500 });
  const reads = faultyFetch([failure]);
  const info = await provider(cognito.apiUrl, {
    fetch: reads.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).inspectClient(APP);
  assert.equal(info.secrets?.length, 1);
  assert.equal(reads.seen.length, 2);
  const writes = faultyFetch([failure]);
  const error = await provider(cognito.apiUrl, {
    fetch: writes.fetch,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).issueSecret(APP).catch((e) => e);
  assert.equal(error.code, CognitoErrorCode.UNAVAILABLE);
  assert.equal(writes.seen.length, 1);
});

Deno.test("Cognito: temporary credentials sign with their session token (X-Amz-Security-Token)", async () => {
  const temporary = { ...KEY, sessionToken: "session-token-value" };
  await using cognito = startCognitoEmulator({
    userPoolId: POOL,
    clients: [{ clientId: APP, secrets: [OLD] }],
    principals: [temporary],
  });
  const signed = await provider(cognito.apiUrl, {
    getCredentials: () => Promise.resolve(temporary),
  }).inspectClient(APP);
  assert.equal(signed.secrets?.length, 1);
  const unsigned = await provider(cognito.apiUrl, {
    getCredentials: () => Promise.resolve(KEY),
  }).inspectClient(APP).catch((e) => e);
  assert.equal(unsigned.code, CognitoErrorCode.UNAUTHORIZED);
  assert.equal(unsigned.providerCode, "UnrecognizedClientException");
});

Deno.test("Cognito: a delete whose answer was lost is retried, and the retry finding nothing resolves", async () => {
  const clock = new InstantClock();
  await using cognito = start(
    undefined,
    [OLD, "second_secret_value_24_chars"],
    {
      clock,
    },
  );
  const [old] = cognito.secrets(APP);
  let lost = 0;
  // The delete reaches Cognito, then its answer is lost on the way back.
  const lossy: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const response = await fetch(request);
    if (
      lost === 0 &&
      request.headers.get("x-amz-target")?.endsWith(
        ".DeleteUserPoolClientSecret",
      )
    ) {
      lost++;
      await response.body?.cancel();
      throw new TypeError("connection reset");
    }
    return response;
  };
  await provider(cognito.apiUrl, {
    fetch: lossy,
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).revokeSecret!(APP, old.secretId);
  assert.equal(lost, 1);
  assert.deepEqual(
    cognito.secrets(APP).map((s) => s.secretId).includes(old.secretId),
    false,
  );
});

Deno.test("Cognito: a session token that cannot be sent in a header is refused without quoting it anywhere", async () => {
  await using cognito = start();
  const clock = new InstantClock();
  const error = await provider(cognito.apiUrl, {
    getCredentials: () =>
      Promise.resolve({ ...KEY, sessionToken: "session\r\nwith-a-break" }),
    clock,
    requestTimeoutMs: NEVER_FIRES,
  }).inspectClient(APP).catch((e) => e);
  assert.ok(error instanceof ConfigError);
  assert.equal(error.option, "getCredentials");
  for (
    const shown of [Deno.inspect(error, { depth: 10 }), JSON.stringify(error)]
  ) {
    assert.doesNotMatch(shown, /with-a-break/);
  }
  assert.deepEqual(clock.waits, []);
});

Deno.test("Cognito: an InvalidParameterException on a read is passed on without the last-secret advice", async () => {
  await using cognito = start();
  const invalid = faultyFetch([() =>
    Response.json({
      __type: "InvalidParameterException",
      message:
        "1 validation error detected: Value 'app-client' at 'clientId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+]+",
    }, { status: 400 })]);
  const error = await provider(cognito.apiUrl, { fetch: invalid.fetch })
    .inspectClient(APP).catch((e) => e);
  assert.equal(error.code, CognitoErrorCode.REFUSED);
  assert.match(error.message, /failed to satisfy constraint/);
  // Listing deletes nothing: advice about the last secret would mislead.
  assert.doesNotMatch(error.message, /at least one secret|deleting the last/);
});

Deno.test("Cognito: an empty session token (AWS_SESSION_TOKEN set but empty) signs as long-term credentials, as AWS's signer does", async () => {
  await using cognito = start();
  const info = await provider(cognito.apiUrl, {
    getCredentials: () => Promise.resolve({ ...KEY, sessionToken: "" }),
  }).inspectClient(APP);
  assert.equal(info.secrets?.length, 1);
});

Deno.test("Cognito: an AddUserPoolClientSecret answer that lacks the ClientSecretId says a secret may have been added", async () => {
  await using cognito = start();
  const error = await provider(cognito.apiUrl, {
    fetch: async (input, init) => {
      const request = new Request(input, init);
      const response = await fetch(request);
      const target = request.headers.get("x-amz-target") ?? "";
      if (!target.endsWith(".AddUserPoolClientSecret")) return response;
      const { ClientSecretDescriptor: { ClientSecretId: _id, ...rest } } =
        await response.json();
      return Response.json({ ClientSecretDescriptor: rest });
    },
  }).issueSecret(APP).catch((e) => e);
  assert.equal(error.code, CognitoErrorCode.REQUEST_FAILED);
  assert.equal(cognito.secrets(APP).length, 2);
  assert.match(error.message, /a secret may have been added/);
});
