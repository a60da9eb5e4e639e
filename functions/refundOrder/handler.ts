import { createApp } from '../../lib/app';
import { refundOrderHandler } from '../../lib/operator/refundOrderHandler';

export const app = createApp();

/** Invoked by an operator only (IAM, no route): `{"order_id": N, "reason": "…"}`. */
export const handler = refundOrderHandler(app);
