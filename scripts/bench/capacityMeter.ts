/**
 * What DynamoDB would bill for each request the code sends, computed from the items themselves
 * (dynalite reports no capacity for transactions): the before and after image of every item a request
 * touches is read with a second, unmetered client. Rules (docs/capacity.md cites the AWS pages):
 * - a read: 1 read unit per 4 KB of the item, strongly consistent (half eventually consistent); a
 *   missing item still costs the minimum; a batch read, each key as a read of its own; a query: the
 *   sum of its items' sizes, rounded up once;
 * - a write: 1 write unit per 1 KB of the larger of the item before and after, a failed condition
 *   included (the existing item, or 1);
 * - in a transaction every item costs twice (prepare and commit), a condition check too, and a
 *   cancelled transaction costs what a committed one would;
 * - the index `open-attempts` (projection ALL): an item entering or leaving it costs 1 write unit per
 *   1 KB of it, one whose index key changes 2, one staying with other attributes changed 1. AWS does
 *   not say whether an index write of a transaction is doubled; it is counted once here.
 */
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';

type Item = Record<string, unknown>;
type Key = { pk: string; sk: string };

export interface Capacity {
  readUnits: number;
  writeUnits: number;
  /** Of which the index's writes. */
  indexWriteUnits: number;
  requests: number;
}

export interface CapacityMeter {
  /** Adds everything sent while `work` runs to `label`. */
  measure<T>(label: string, work: () => Promise<T>): Promise<T>;
  readonly byLabel: Map<string, Capacity>;
}

const KB = 1024;

/** DynamoDB's size of a value, as its item size rules count it. */
function valueSize(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'bigint') {
    const digits = String(value).replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
  }
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...value].reduce((sum: number, v) => sum + valueSize(v), 0);
  if (Array.isArray(value)) return 3 + value.reduce((sum: number, v) => sum + valueSize(v) + 1, 0);
  if (typeof value === 'object')
    return 3 + Object.entries(value as Item).reduce((sum, [name, v]) => sum + Buffer.byteLength(name, 'utf8') + valueSize(v) + 1, 0);
  throw new Error(`no size for ${typeof value}`);
}

export function itemSize(item: Item): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name, 'utf8') + valueSize(value), 0);
}

const writeUnits = (item: Item | undefined) => (item ? Math.max(1, Math.ceil(itemSize(item) / KB)) : 0);
const inIndex = (item: Item | undefined): item is Item => item?.gsi1pk !== undefined && item?.gsi1sk !== undefined;

/** The index's write units for one item changing from `before` to `after`. */
function indexWriteUnits(before: Item | undefined, after: Item | undefined): number {
  const was = inIndex(before);
  const is = inIndex(after);
  if (!was && !is) return 0;
  if (was && !is) return writeUnits(before);
  if (!was && is) return writeUnits(after);
  if (before?.gsi1pk !== after?.gsi1pk || before?.gsi1sk !== after?.gsi1sk) return writeUnits(before) + writeUnits(after);
  return JSON.stringify(before) === JSON.stringify(after) ? 0 : writeUnits(after);
}

export function meterCapacity(client: DynamoDBDocumentClient, unmetered: DynamoDBDocumentClient, table: string): CapacityMeter {
  const byLabel = new Map<string, Capacity>();
  let current: Capacity | undefined;
  const image = async (key: Key) => (await unmetered.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;

  client.middlewareStack.add(
    (next, context) => async (args) => {
      const bill = current;
      if (!bill) return next(args);
      const input = args.input as Item;
      const command = String(context.commandName);
      bill.requests++;
      const writes = writeTargets(command, input);
      const before = await Promise.all(writes.map((w) => image(w.key)));
      let output: Awaited<ReturnType<typeof next>> | undefined;
      let failure: unknown;
      try {
        output = await next(args);
      } catch (error) {
        failure = error;
      }
      const after = await Promise.all(writes.map((w) => image(w.key)));
      writes.forEach((w, i) => {
        const units = Math.max(writeUnits(before[i]), writeUnits(after[i]), 1) * (w.transactional ? 2 : 1);
        bill.writeUnits += units;
        const index = w.conditionCheck ? 0 : indexWriteUnits(before[i], after[i]);
        bill.writeUnits += index;
        bill.indexWriteUnits += index;
      });
      bill.readUnits += readUnits(command, input, output?.output as Item | undefined);
      if (failure) throw failure;
      return output as Awaited<ReturnType<typeof next>>;
    },
    { step: 'initialize', name: 'meterCapacity' },
  );

  return {
    byLabel,
    async measure(label, work) {
      const bill = byLabel.get(label) ?? { readUnits: 0, writeUnits: 0, indexWriteUnits: 0, requests: 0 };
      byLabel.set(label, bill);
      current = bill;
      try {
        return await work();
      } finally {
        current = undefined;
      }
    },
  };
}

function writeTargets(command: string, input: Item): { key: Key; transactional: boolean; conditionCheck: boolean }[] {
  const keyOf = (request: Item) => (request.Key ?? { pk: (request.Item as Item).pk, sk: (request.Item as Item).sk }) as Key;
  switch (command) {
    case 'PutItemCommand':
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      return [{ key: keyOf(input), transactional: false, conditionCheck: false }];
    case 'TransactWriteItemsCommand':
      return (input.TransactItems as Item[]).map((entry) => {
        const [kind, request] = Object.entries(entry)[0] as [string, Item];
        return { key: keyOf(request), transactional: true, conditionCheck: kind === 'ConditionCheck' };
      });
    case 'BatchWriteItemCommand':
      throw new Error('BatchWriteItem is not metered');
    default:
      return [];
  }
}

function readUnits(command: string, input: Item, output: Item | undefined): number {
  const units = (bytes: number, consistent: boolean) => Math.max(1, Math.ceil(bytes / (4 * KB))) * (consistent ? 1 : 0.5);
  switch (command) {
    case 'GetItemCommand':
      return units(output?.Item ? itemSize(output.Item as Item) : 0, input.ConsistentRead === true);
    case 'TransactGetItemsCommand':
      return (input.TransactItems as Item[]).reduce((sum: number, _entry, i) => {
        const item = (output?.Responses as { Item?: Item }[] | undefined)?.[i]?.Item;
        return sum + 2 * units(item ? itemSize(item) : 0, true);
      }, 0);
    case 'QueryCommand': {
      const bytes = ((output?.Items as Item[] | undefined) ?? []).reduce((sum, item) => sum + itemSize(item), 0);
      return units(bytes, input.ConsistentRead === true);
    }
    case 'BatchGetItemCommand': {
      // Each key a read of its own (DynamoDB rounds each item up to 4 KB); keys left unprocessed were not read.
      const responses = (output?.Responses ?? {}) as Record<string, Item[]>;
      const unprocessed = (output?.UnprocessedKeys ?? {}) as Record<string, { Keys: Key[] }>;
      return Object.entries(input.RequestItems as Record<string, { Keys: Key[]; ConsistentRead?: boolean }>).reduce((sum, [table, request]) => {
        const found = responses[table] ?? [];
        const missing = request.Keys.length - found.length - (unprocessed[table]?.Keys.length ?? 0);
        const consistent = request.ConsistentRead === true;
        return sum + found.reduce((units_, item) => units_ + units(itemSize(item), consistent), 0) + missing * units(0, consistent);
      }, 0);
    }
    case 'ScanCommand':
      throw new Error(`${command} is not metered`);
    default:
      return 0;
  }
}
