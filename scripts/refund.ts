/**
 * npm run refund -- ORDER_ID --reason TEXT [--attempt OUT_TRADE_NO] [--repaid-outside HOW]
 * Asks the local stack's refundOrder function (the one an operator invokes with IAM on AWS) to refund
 * a paid order in full, or with --attempt one refund case of it, and prints its JSON answer. With
 * --repaid-outside the cash went back outside the gateways (HOW: a bank transfer's reference, say):
 * recorded as a refund done, the points back, nothing sent to a gateway. Exits 0
 * when the refund was accepted or was done already, 1 when it was refused (the answer says why), 2 on
 * a usage error or when the stack cannot be reached.
 *
 * On AWS: aws lambda invoke --function-name paynow-prod-refundOrder --cli-binary-format raw-in-base64-out \
 *   --payload '{"order_id": 501, "reason": "用户取消"}' answer.json
 */
import { parseArgs } from 'node:util';
import { invokeLocalFunction } from './local/invokeLocal';

const USAGE = 'usage: npm run refund -- ORDER_ID --reason TEXT [--attempt OUT_TRADE_NO] [--repaid-outside HOW]   (npm start must be running)';

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const orderId = Number(positionals[0]);
  if (positionals.length !== 1 || !Number.isSafeInteger(orderId) || orderId < 1 || !values.reason) {
    console.error(USAGE);
    return 2;
  }
  const answer = (await invokeLocalFunction('refundOrder', {
    order_id: orderId,
    reason: values.reason,
    out_trade_no: values.attempt,
    repaid_outside: values['repaid-outside'],
  })) as { error?: string };
  console.log(JSON.stringify(answer, null, 2));
  return answer && typeof answer === 'object' && !answer.error ? 0 : 1;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { reason: { type: 'string' }, attempt: { type: 'string' }, 'repaid-outside': { type: 'string' } },
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`refund failed: ${error.message}`);
    process.exit(2);
  },
);
