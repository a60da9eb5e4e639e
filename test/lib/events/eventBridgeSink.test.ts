import { Readable } from 'node:stream';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { orderClosedEvent } from '../../../lib/domain/events';
import { eventBridgeSink } from '../../../lib/events/eventBridgeSink';

/**
 * EventBridge at the SDK boundary: the real client serializes the real PutEvents request and parses
 * the answer; only the HTTP exchange is answered here, the way EventBridge answers (a 200 whose
 * entries may each have failed).
 */
function clientAnswering(answers: ((entries: { DetailType: string }[]) => { status: number; body: object })[]) {
  const requests: { Entries: { Source: string; DetailType: string; Detail: string; EventBusName: string; Time: number }[] }[] = [];
  const client = new EventBridgeClient({
    region: 'ap-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' },
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: { body: Uint8Array | string; headers: Record<string, string> }) => {
        // The SDK hands the handler the serialized JSON as bytes.
        const body = JSON.parse(new TextDecoder().decode(request.body as Uint8Array));
        expect(request.headers['x-amz-target']).toBe('AWSEvents.PutEvents');
        requests.push(body);
        const answer = (answers.shift() as (typeof answers)[number])(body.Entries);
        return {
          // An HTTP response as the SDK's own node handler hands it over.
          response: {
            statusCode: answer.status,
            headers: { 'content-type': 'application/x-amz-json-1.1' },
            body: Readable.from([Buffer.from(JSON.stringify(answer.body))]),
          },
        };
      },
    } as never,
  });
  return { client, requests };
}

const outbox = (orderId: number) => {
  const event = orderClosedEvent({ orderId, userId: 7 }, undefined, '2026-11-29T08:00:00.000Z');
  return { event, body: JSON.stringify(event), status: 'pending' as const, deliveredTo: [], attempts: 0, deliveries: [] };
};

it('puts each event as its own entry, ten per call, and keeps each entry’s result (FailedEntryCount)', async () => {
  const events = Array.from({ length: 12 }, (_, i) => outbox(100 + i));
  const { client, requests } = clientAnswering([
    (entries) => ({
      status: 200,
      body: {
        FailedEntryCount: 1,
        Entries: entries.map((_, i) => (i === 3 ? { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' } : { EventId: `eb-${i}` })),
      },
    }),
    (entries) => ({ status: 200, body: { FailedEntryCount: 0, Entries: entries.map((_, i) => ({ EventId: `eb2-${i}` })) } }),
  ]);
  const results = await eventBridgeSink(client, 'shop-bus').send(events);
  expect(requests.map((r) => r.Entries.length)).toEqual([10, 2]);
  expect(requests[0]?.Entries[0]).toMatchObject({ Source: 'paynow', DetailType: 'order.closed', EventBusName: 'shop-bus', Detail: events[0]?.body });
  expect(results).toEqual([...Array(3).fill('ok'), 'ThrottlingException: Rate exceeded', ...Array(8).fill('ok')]);
});

it('a call refused as a whole fails every entry of it, and only those', async () => {
  const events = Array.from({ length: 11 }, (_, i) => outbox(200 + i));
  const { client } = clientAnswering([
    () => ({ status: 400, body: { __type: 'ResourceNotFoundException', message: 'Event bus shop-bus does not exist.' } }),
    (entries) => ({ status: 200, body: { FailedEntryCount: 0, Entries: entries.map((_, i) => ({ EventId: `eb-${i}` })) } }),
  ]);
  const results = await eventBridgeSink(client, 'shop-bus').send(events);
  expect(results).toEqual([...Array(10).fill('PutEvents ResourceNotFoundException'), 'ok']);
});

it('an answer without an entry for an event does not count as delivered', async () => {
  const { client } = clientAnswering([() => ({ status: 200, body: { FailedEntryCount: 0, Entries: [{ EventId: 'only-one' }] } })]);
  expect(await eventBridgeSink(client, 'shop-bus').send([outbox(1), outbox(2)])).toEqual(['ok', 'no entry in the answer']);
});

it('exactly ten events make one call, and no events make none', async () => {
  const { client, requests } = clientAnswering([
    (entries) => ({ status: 200, body: { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: 'eb' })) } }),
  ]);
  const events = Array.from({ length: 10 }, (_, i) => outbox(300 + i));
  expect(await eventBridgeSink(client, 'shop-bus').send(events)).toEqual(Array(10).fill('ok'));
  expect(requests.map((r) => r.Entries.length)).toEqual([10]);
  expect(await eventBridgeSink(client, 'shop-bus').send([])).toEqual([]);
  expect(requests).toHaveLength(1);
});

it('a refused entry without a message is reported by its code alone; an entry with neither code nor id is not delivered', async () => {
  const { client } = clientAnswering([
    () => ({ status: 200, body: { FailedEntryCount: 2, Entries: [{ ErrorCode: 'InternalFailure' }, {}, { EventId: 'eb' }] } }),
  ]);
  expect(await eventBridgeSink(client, 'shop-bus').send([outbox(1), outbox(2), outbox(3)])).toEqual(['InternalFailure', 'no event id in the answer', 'ok']);
});
