/**
 * Every contender, in table order.
 *
 * @module
 */
import { badgatewayOauth2Client } from "./badgateway_oauth2_client.ts";
import type { ContenderFactory } from "./contender.ts";
import { purecloudSdk } from "./purecloud_sdk.ts";
import { seedPort } from "./seed_port.ts";
import { thisModule } from "./this_module.ts";

/** This module first, then the seed's port, then the npm libraries. */
export const CONTENDERS: readonly ContenderFactory[] = [
  thisModule,
  seedPort,
  badgatewayOauth2Client,
  purecloudSdk,
];
