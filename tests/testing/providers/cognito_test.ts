import assert from "node:assert/strict";
import { createDualSecretAuth } from "../../../mod.ts";
import { FakeClock } from "../../../src/testing/fake_clock.ts";
import {
  type CognitoEmulator,
  type CognitoEmulatorOptions,
  startCognitoEmulator,
} from "../../../src/testing/providers/cognito.ts";
import {
  amzStamp,
  canonicalRequest,
  signatureOf,
} from "../../../src/testing/providers/cognito_sigv4.ts";

const POOL = "eu-central-1_TESTPOOL";
const REGION = "eu-central-1";
const ADMIN = { accessKeyId: "AKIAADMIN", secretAccessKey: "admin-key" };
const READER = {
  accessKeyId: "AKIAREADER",
  secretAccessKey: "reader-key",
  actions: ["cognito-idp:ListUserPoolClientSecrets"],
  arn: "arn:aws:iam::111122223333:user/reader",
};
const FIRST = "first-secret-aaaaaaaaaaaaaaaa";
const SECOND = "second-secret-bbbbbbbbbbbbbbb";

function start(
  options: Partial<CognitoEmulatorOptions> = {},
): CognitoEmulator {
  return startCognitoEmulator({
    userPoolId: POOL,
    clients: [{
      clientId: "app",
      secrets: [FIRST],
      allowedScopes: ["orders/read", "orders/write"],
    }, {
      clientId: "no-cc",
      secrets: [SECOND],
      clientCredentialsFlow: false,
    }],
    principals: [ADMIN, READER],
    ...options,
  });
}

function token(
  cognito: CognitoEmulator,
  init: { authorization?: string; body?: string; contentType?: string },
): Promise<Response> {
  return fetch(cognito.tokenUrl, {
    method: "POST",
    headers: {
      ...(init.authorization === undefined
        ? {}
        : { authorization: init.authorization }),
      "content-type": init.contentType ?? "application/x-www-form-urlencoded",
    },
    body: init.body ?? "grant_type=client_credentials",
  });
}

const basic = (id: string, secret: string) =>
  `Basic ${btoa(`${id}:${secret}`)}`;

/** Signs a JSON 1.1 request the way the AWS SDK does (checked by the SDK test). */
async function call(
  cognito: CognitoEmulator,
  operation: string,
  input: unknown,
  key: { accessKeyId: string; secretAccessKey: string } | null = ADMIN,
  options: { region?: string; at?: number; sendInstead?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const signedBody = JSON.stringify(input);
  const amzDate = amzStamp(options.at ?? Date.now());
  const headers = new Headers({
    host: new URL(cognito.apiUrl).host,
    "content-type": "application/x-amz-json-1.1",
    "x-amz-target": `AWSCognitoIdentityProviderService.${operation}`,
    "x-amz-date": amzDate,
  });
  if (key) {
    const signed = ["content-type", "host", "x-amz-date", "x-amz-target"];
    const scope = `${amzDate.slice(0, 8)}/${
      options.region ?? REGION
    }/cognito-idp/aws4_request`;
    const canonical = await canonicalRequest(
      new Request(cognito.apiUrl, { method: "POST", headers }),
      signedBody,
      signed,
    );
    const signature = await signatureOf(
      key.secretAccessKey,
      amzDate,
      scope,
      canonical,
    );
    headers.set(
      "authorization",
      `AWS4-HMAC-SHA256 Credential=${key.accessKeyId}/${scope}, SignedHeaders=${
        signed.join(";")
      }, Signature=${signature}`,
    );
  }
  headers.delete("host");
  const body = "sendInstead" in options
    ? JSON.stringify(options.sendInstead)
    : signedBody;
  const response = await fetch(cognito.apiUrl, {
    method: "POST",
    headers,
    body,
  });
  assert.equal(
    response.headers.get("content-type"),
    "application/x-amz-json-1.1",
  );
  return { status: response.status, body: await response.json() };
}

Deno.test("SigV4: the signature of AWS's documented IAM ListUsers example", async () => {
  const request = new Request(
    "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
    {
      headers: {
        host: "iam.amazonaws.com",
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "x-amz-date": "20150830T123600Z",
      },
    },
  );
  const canonical = await canonicalRequest(request, "", [
    "content-type",
    "host",
    "x-amz-date",
  ]);
  assert.equal(
    await signatureOf(
      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      "20150830T123600Z",
      "20150830/us-east-1/iam/aws4_request",
      canonical,
    ),
    "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
  );
});

Deno.test("Cognito token endpoint: success body, all allowed scopes, Basic or post", async () => {
  await using cognito = start();
  const ok = await token(cognito, { authorization: basic("app", FIRST) });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("cache-control"), "no-store");
  const body = await ok.json();
  assert.deepEqual(Object.keys(body).sort(), [
    "access_token",
    "expires_in",
    "token_type",
  ]);
  assert.equal(body.token_type, "Bearer");
  assert.equal(body.expires_in, 3600);
  const resource = await fetch(cognito.resourceUrl, {
    headers: { authorization: `Bearer ${body.access_token}` },
  });
  assert.deepEqual(await resource.json(), {
    client_id: "app",
    scope: "orders/read orders/write",
  });

  const posted = await token(cognito, {
    body: `grant_type=client_credentials&client_id=app&client_secret=${FIRST}`,
  });
  assert.equal(posted.status, 200);
  await posted.body?.cancel();

  const narrowed = await token(cognito, {
    authorization: basic("app", FIRST),
    body: "grant_type=client_credentials&scope=orders%2Fread",
  });
  const access = (await narrowed.json()).access_token;
  const scoped = await fetch(cognito.resourceUrl, {
    headers: { authorization: `Bearer ${access}` },
  });
  assert.equal((await scoped.json()).scope, "orders/read");
  assert.equal(cognito.stats().tokensIssued, 3);
});

Deno.test("Cognito token endpoint: each refusal is a bare error code with Cognito's status", async () => {
  await using cognito = start();
  const cases: [Parameters<typeof token>[1], number, string][] = [
    [{ authorization: basic("app", "wrong") }, 400, "invalid_client"],
    [{ authorization: basic("nobody", FIRST) }, 400, "invalid_client"],
    [{}, 400, "invalid_client"],
    [
      { authorization: basic("app", FIRST), body: "scope=orders%2Fread" },
      400,
      "invalid_request",
    ],
    [
      {
        authorization: basic("app", FIRST),
        body: "{}",
        contentType: "application/json",
      },
      400,
      "invalid_request",
    ],
    [
      { authorization: basic("app", FIRST), body: "grant_type=password" },
      400,
      "unsupported_grant_type",
    ],
    [
      {
        authorization: basic("app", FIRST),
        body: "grant_type=authorization_code",
      },
      400,
      "unauthorized_client",
    ],
    [{ authorization: basic("no-cc", SECOND) }, 400, "unauthorized_client"],
    [
      {
        authorization: basic("app", FIRST),
        body: "grant_type=client_credentials&scope=openid",
      },
      400,
      "invalid_scope",
    ],
  ];
  for (const [init, status, error] of cases) {
    const response = await token(cognito, init);
    assert.equal(response.status, status, JSON.stringify(init));
    assert.deepEqual(await response.json(), { error }, JSON.stringify(init));
  }
  assert.equal(cognito.stats().tokenFailures, cases.length);
});

Deno.test("Cognito API: add, list (no values), delete; a third secret and the last delete refused", async () => {
  await using cognito = start();
  const target = { UserPoolId: POOL, ClientId: "app" };
  const added = await call(cognito, "AddUserPoolClientSecret", target);
  assert.equal(added.status, 200);
  const descriptor = added.body.ClientSecretDescriptor as Record<
    string,
    unknown
  >;
  assert.match(String(descriptor.ClientSecretId), /^app--\d+$/);
  assert.equal(typeof descriptor.ClientSecretValue, "string");
  assert.equal(typeof descriptor.ClientSecretCreateDate, "number");
  const generated = String(descriptor.ClientSecretValue);
  const withNew = await token(cognito, {
    authorization: basic("app", generated),
  });
  assert.equal(withNew.status, 200);
  await withNew.body?.cancel();
  const withOld = await token(cognito, { authorization: basic("app", FIRST) });
  assert.equal(withOld.status, 200, "both secrets work together");
  await withOld.body?.cancel();

  const third = await call(cognito, "AddUserPoolClientSecret", target);
  assert.equal(third.status, 400);
  assert.equal(third.body.__type, "LimitExceededException");

  const listed = await call(cognito, "ListUserPoolClientSecrets", target);
  const secrets = listed.body.ClientSecrets as Record<string, unknown>[];
  assert.equal(secrets.length, 2);
  for (const secret of secrets) {
    assert.deepEqual(Object.keys(secret).sort(), [
      "ClientSecretCreateDate",
      "ClientSecretId",
    ]);
  }
  const oldId = secrets[0].ClientSecretId;
  const deleted = await call(cognito, "DeleteUserPoolClientSecret", {
    ...target,
    ClientSecretId: oldId,
  });
  assert.deepEqual(deleted, { status: 200, body: {} });
  const refused = await token(cognito, { authorization: basic("app", FIRST) });
  assert.deepEqual(await refused.json(), { error: "invalid_client" });

  const last = await call(cognito, "DeleteUserPoolClientSecret", {
    ...target,
    ClientSecretId: descriptor.ClientSecretId,
  });
  assert.equal(last.body.__type, "InvalidParameterException");
  const unknown = await call(cognito, "DeleteUserPoolClientSecret", {
    ...target,
    ClientSecretId: "app--1",
  });
  assert.equal(unknown.body.__type, "ResourceNotFoundException");
});

Deno.test("Cognito API: a caller's secret is 24-64 [\\w+] characters and is not echoed", async () => {
  await using cognito = start();
  const target = { UserPoolId: POOL, ClientId: "app" };
  const short = await call(cognito, "AddUserPoolClientSecret", {
    ...target,
    ClientSecret: "too-short",
  });
  assert.equal(short.body.__type, "InvalidParameterException");
  const chosen = "Chosen_secret+value_0123456789";
  const added = await call(cognito, "AddUserPoolClientSecret", {
    ...target,
    ClientSecret: chosen,
  });
  const descriptor = added.body.ClientSecretDescriptor as Record<
    string,
    unknown
  >;
  assert.equal(descriptor.ClientSecretValue, undefined);
  const works = await token(cognito, { authorization: basic("app", chosen) });
  assert.equal(works.status, 200);
  await works.body?.cancel();
  const noPool = await call(cognito, "ListUserPoolClientSecrets", {
    UserPoolId: "eu-central-1_OTHER",
    ClientId: "app",
  });
  assert.equal(noPool.body.__type, "ResourceNotFoundException");
  const noClient = await call(cognito, "ListUserPoolClientSecrets", {
    UserPoolId: POOL,
  });
  assert.equal(noClient.body.__type, "InvalidParameterException");
});

Deno.test("Cognito API: missing IAM permission, unsigned, unknown key, wrong key, wrong region, stale date", async () => {
  await using cognito = start();
  const target = { UserPoolId: POOL, ClientId: "app" };
  const reader = await call(cognito, "AddUserPoolClientSecret", target, READER);
  assert.equal(reader.status, 400);
  assert.equal(reader.body.__type, "AccessDeniedException");
  assert.match(
    String(reader.body.message),
    /arn:aws:iam::111122223333:user\/reader is not authorized to perform: cognito-idp:AddUserPoolClientSecret/,
  );
  const readerList = await call(
    cognito,
    "ListUserPoolClientSecrets",
    target,
    READER,
  );
  assert.equal(readerList.status, 200);

  const refusals: [
    Awaited<ReturnType<typeof call>>,
    string,
  ][] = [
    [
      await call(cognito, "ListUserPoolClientSecrets", target, null),
      "MissingAuthenticationTokenException",
    ],
    [
      await call(cognito, "ListUserPoolClientSecrets", target, {
        accessKeyId: "AKIANOBODY",
        secretAccessKey: "x",
      }),
      "UnrecognizedClientException",
    ],
    [
      await call(cognito, "ListUserPoolClientSecrets", target, {
        ...ADMIN,
        secretAccessKey: "wrong",
      }),
      "InvalidSignatureException",
    ],
    [
      await call(cognito, "ListUserPoolClientSecrets", target, ADMIN, {
        region: "us-east-1",
      }),
      "InvalidSignatureException",
    ],
    [
      await call(cognito, "ListUserPoolClientSecrets", target, ADMIN, {
        at: Date.now() - 6 * 60_000,
      }),
      "InvalidSignatureException",
    ],
    [
      await call(
        cognito,
        "DeleteUserPoolClientSecret",
        {
          ...target,
          ClientSecretId: "app--1",
        },
        ADMIN,
        {
          sendInstead: {
            ...target,
            ClientSecretId: cognito.secrets("app")[0].secretId,
          },
        },
      ),
      "InvalidSignatureException",
    ],
  ];
  for (const [response, type] of refusals) {
    assert.equal(response.status, 400);
    assert.equal(response.body.__type, type);
  }
  assert.match(
    String(refusals[4][0].body.message),
    /^Signature expired: /,
  );
  const unknownOperation = await call(cognito, "DescribeUserPool", target);
  assert.equal(unknownOperation.body.__type, "UnknownOperationException");
  assert.equal(cognito.secrets("app").length, 1, "nothing was added");
});

Deno.test("Cognito switches: a new secret works only after propagationDelayMs; deleting can revoke its tokens", async () => {
  const clock = new FakeClock(Date.now());
  await using cognito = start({
    clock,
    propagationDelayMs: 10_000,
    revokeTokensWithSecret: true,
  });
  const firstToken = (await (await token(cognito, {
    authorization: basic("app", FIRST),
  })).json()).access_token;
  const added = cognito.addSecret("app");
  const early = await token(cognito, {
    authorization: basic("app", added.value),
  });
  assert.deepEqual(await early.json(), { error: "invalid_client" });
  await clock.advance(10_000);
  const late = await token(cognito, {
    authorization: basic("app", added.value),
  });
  assert.equal(late.status, 200);
  await late.body?.cancel();
  cognito.deleteSecret("app", cognito.secrets("app")[0].secretId);
  const resource = await fetch(cognito.resourceUrl, {
    headers: { authorization: `Bearer ${firstToken}` },
  });
  assert.equal(resource.status, 401);
  assert.match(resource.headers.get("www-authenticate")!, /invalid_token/);
  await resource.body?.cancel();
});

Deno.test("Cognito by default: tokens outlive the deletion of their secret", async () => {
  await using cognito = start();
  cognito.addSecret("app", SECOND);
  const firstToken = (await (await token(cognito, {
    authorization: basic("app", FIRST),
  })).json()).access_token;
  cognito.deleteSecret("app", cognito.secrets("app")[0].secretId);
  const resource = await fetch(cognito.resourceUrl, {
    headers: { authorization: `Bearer ${firstToken}` },
  });
  assert.equal(resource.status, 200);
  await resource.body?.cancel();
});

Deno.test("Cognito API: apiRateLimit answers TooManyRequestsException", async () => {
  await using cognito = start({
    apiRateLimit: { limit: 1, windowSeconds: 60 },
  });
  const target = { UserPoolId: POOL, ClientId: "app" };
  assert.equal(
    (await call(cognito, "ListUserPoolClientSecrets", target)).status,
    200,
  );
  const limited = await call(cognito, "ListUserPoolClientSecrets", target);
  assert.equal(limited.body.__type, "TooManyRequestsException");
});

Deno.test("createDualSecretAuth on Cognito: two secrets of one client, failover when one is deleted", async () => {
  await using cognito = start();
  const second = cognito.addSecret("app", SECOND);
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "old", clientId: "app", clientSecret: FIRST },
      { label: "new", clientId: "app", clientSecret: second.value },
    ],
    tokenUrl: cognito.tokenUrl,
    scope: "orders/read",
  });
  const before = await auth.fetch(cognito.resourceUrl);
  assert.equal(before.status, 200);
  assert.equal((await before.json()).scope, "orders/read");
  assert.equal(auth.status().active, "old");

  cognito.deleteSecret("app", cognito.secrets("app")[0].secretId);
  auth.invalidate();
  const after = await auth.fetch(cognito.resourceUrl);
  assert.equal(after.status, 200);
  await after.body?.cancel();
  assert.equal(auth.status().active, "new");
  assert.equal(cognito.stats().tokenFailures, 1);
});

Deno.test("Cognito token faults: an injected 503 has Cognito's bare body; createDualSecretAuth retries through it without failing over", async () => {
  await using cognito = start();
  cognito.injectTokenFaults({ kind: "status", status: 503 });
  const faulted = await token(cognito, { authorization: basic("app", FIRST) });
  assert.equal(faulted.status, 503);
  assert.deepEqual(await faulted.json(), { error: "server_error" });

  cognito.addSecret("app", SECOND);
  cognito.injectTokenFaults({ kind: "status", status: 500 }, 2);
  await using auth = createDualSecretAuth({
    credentials: [
      { label: "old", clientId: "app", clientSecret: FIRST },
      { label: "new", clientId: "app", clientSecret: SECOND },
    ],
    tokenUrl: cognito.tokenUrl,
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
  });
  await auth.getAccessToken();
  assert.equal(auth.status().active, "old");
  const stats = cognito.stats();
  assert.equal(stats.tokenRequests, 4);
  assert.equal(stats.tokenRequestsByClient.app, 4);
  assert.equal(stats.tokenFailures, 3);
});
