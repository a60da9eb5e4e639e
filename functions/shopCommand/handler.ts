import { createApp } from '../../lib/app';
import { shopCommandHandler } from '../../lib/operator/shopCommandHandler';

export const app = createApp();

/** Invoked by the shop's own services only (IAM, no route): `{"command": "upsert-order", ...}`. */
export const handler = shopCommandHandler(app);
