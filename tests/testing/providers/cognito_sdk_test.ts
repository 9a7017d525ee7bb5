/**
 * The Cognito emulator driven by AWS's own SDK, pointed at it with
 * `endpoint`: the SDK signs with SigV4, and parses answers and errors as it
 * would a real user pool's.
 */
import assert from "node:assert/strict";
import {
  AddUserPoolClientSecretCommand,
  CognitoIdentityProviderClient,
  DeleteUserPoolClientSecretCommand,
  LimitExceededException,
  ListUserPoolClientSecretsCommand,
} from "../../deps/aws_cognito_sdk.ts";
import { startCognitoEmulator } from "../../../src/testing/providers/cognito.ts";

const KEY = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "sdk-secret-key" };

Deno.test("Cognito emulator: the AWS SDK adds, lists and deletes secrets and is refused a third", async () => {
  await using cognito = startCognitoEmulator({
    userPoolId: "eu-west-1_SDKPOOL",
    clients: [{ clientId: "app", secrets: ["first-secret-value-000000"] }],
    principals: [KEY],
  });
  const sdk = new CognitoIdentityProviderClient({
    region: "eu-west-1",
    endpoint: cognito.apiUrl,
    credentials: KEY,
    maxAttempts: 1,
  });
  try {
    const target = { UserPoolId: "eu-west-1_SDKPOOL", ClientId: "app" };
    const added = await sdk.send(new AddUserPoolClientSecretCommand(target));
    const descriptor = added.ClientSecretDescriptor!;
    assert.match(descriptor.ClientSecretId!, /^app--\d+$/);
    assert.equal(typeof descriptor.ClientSecretValue, "string");
    assert.ok(descriptor.ClientSecretCreateDate instanceof Date);

    const listed = await sdk.send(new ListUserPoolClientSecretsCommand(target));
    assert.equal(listed.ClientSecrets?.length, 2);
    assert.ok(
      listed.ClientSecrets!.every((s) => s.ClientSecretValue === undefined),
    );

    await assert.rejects(
      sdk.send(new AddUserPoolClientSecretCommand(target)),
      (error: unknown) => {
        assert.ok(error instanceof LimitExceededException);
        assert.equal(error.$metadata.httpStatusCode, 400);
        return true;
      },
    );

    const old = listed.ClientSecrets!.find((s) =>
      s.ClientSecretId !== descriptor.ClientSecretId
    )!;
    await sdk.send(
      new DeleteUserPoolClientSecretCommand({
        ...target,
        ClientSecretId: old.ClientSecretId,
      }),
    );
    const after = await sdk.send(new ListUserPoolClientSecretsCommand(target));
    assert.deepEqual(
      after.ClientSecrets!.map((s) => s.ClientSecretId),
      [descriptor.ClientSecretId],
    );

    const wrongKey = new CognitoIdentityProviderClient({
      region: "eu-west-1",
      endpoint: cognito.apiUrl,
      credentials: { ...KEY, secretAccessKey: "not-the-key" },
      maxAttempts: 1,
    });
    try {
      await assert.rejects(
        wrongKey.send(new ListUserPoolClientSecretsCommand(target)),
        { name: "InvalidSignatureException" },
      );
    } finally {
      wrongKey.destroy();
    }
  } finally {
    sdk.destroy();
  }
});
