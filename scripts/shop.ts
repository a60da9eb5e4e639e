/**
 * npm run shop -- COMMAND 'JSON'
 * npm run shop -- events              (the undelivered events to the shop)
 * npm run shop -- redeliver EVENT_ID  (sends one again now, whatever its state)
 * Sends one command to the local stack's shopCommand function (the one the shop's services invoke
 * with IAM on AWS) and prints its JSON answer. Exits 0 when it was carried out (or was already so), 1
 * when it was refused (the answer says why), 2 on a usage error or when the stack cannot be reached.
 *
 * @example npm run shop -- credit-points '{"user_id": 1001, "points": 500, "entry_id": "signin-2026-11-29", "reason": "签到"}'
 * On AWS: aws lambda invoke --function-name paynow-prod-shopCommand --cli-binary-format raw-in-base64-out \
 *   --payload '{"command": "close-order", "order_id": 501}' answer.json
 */
import { invokeLocalFunction } from './local/invokeLocal';

const USAGE = 'usage: npm run shop -- COMMAND \'JSON\' | events | redeliver EVENT_ID   (npm start must be running; README "The shop\'s commands", "Events")';

async function main([command, json = '{}', ...rest]: string[]): Promise<number> {
  // The events paynow sends the shop: the dispatcher's operator actions, not shop commands.
  if (command === 'events' && rest.length === 0 && json === '{}') return printed(await invokeLocalFunction('dispatchEvents', { action: 'list' }));
  if (command === 'redeliver' && rest.length === 0 && json !== '{}')
    return printed(await invokeLocalFunction('dispatchEvents', { action: 'redeliver', event_id: json }));
  let fields: unknown;
  try {
    fields = JSON.parse(json);
  } catch {
    fields = undefined;
  }
  if (!command || rest.length > 0 || !fields || typeof fields !== 'object' || Array.isArray(fields)) {
    console.error(USAGE);
    return 2;
  }
  const answer = (await invokeLocalFunction('shopCommand', { command, ...fields })) as { ok?: boolean };
  console.log(JSON.stringify(answer, null, 2));
  return answer?.ok === true ? 0 : 1;
}

function printed(answer: unknown): number {
  console.log(JSON.stringify(answer, null, 2));
  return answer && typeof answer === 'object' && 'error' in answer ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`shop command failed: ${error.message}`);
    process.exit(2);
  },
);
