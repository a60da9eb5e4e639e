/**
 * `TransactWriteItems` and `TransactGetItems` for dynalite 4.0.0, which has neither.
 *
 * Dev tooling only (local stack and tests). dynalite is used as a dependency and reached only
 * through its own modules: its validations parse every sub-action, and its own `putItem`,
 * `updateItem` and `deleteItem` actions compute each write (conditions, update expressions,
 * index entries) against a staging store that records the writes instead of making them.
 * All writes of a transaction are then committed as one `batch` on dynalite's database while the
 * locks of every item involved are held.
 *
 * @example
 * const server = createDynaliteWithTransactions({ createTableMs: 0 })
 * server.listen(4567)
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';

/** Options passed through to `dynalite()`. */
export interface DynaliteOptions {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  maxItemSizeKb?: number;
  path?: string;
}

// Minimal shapes of the dynalite internals used here (dynalite ships no types).
type AttributeMap = Record<string, unknown>;
interface ItemRequest {
  TableName: string;
  Item?: AttributeMap;
  Key?: AttributeMap;
  ReturnValuesOnConditionCheckFailure?: 'ALL_OLD' | 'NONE';
  _updates?: unknown; // the parsed UpdateExpression, set by validateExpressions
  _projection?: { nestedPaths?: unknown };
}
interface DynaliteError extends Error {
  statusCode?: number;
  body?: { __type: string; message?: string; [field: string]: unknown };
}
type Done<T = unknown> = (err?: DynaliteError | null, value?: T) => void;
interface Table {
  TableName: string;
}
type TypeSpec = Record<string, unknown>;
type BatchOp = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };
type Release = (done: () => void) => () => void;
interface SubDb {
  lock(keys: string | string[], exec: (release: Release) => void): void;
  get(key: string, cb: Done<AttributeMap | undefined>): void;
  put(key: string, value: unknown, cb: Done<void>): void;
  del(key: string, cb: Done<void>): void;
  batch(ops: BatchOp[], cb: Done<void>): void;
}
interface Store {
  db: { batch(ops: BatchOp[], cb?: Done<void>): void };
  getTable(name: string, checkStatus: boolean | Done<Table>, cb?: Done<Table>): void;
  getItemDb(tableName: string): SubDb;
  getIndexDb(indexType: string, tableName: string, indexName: string): SubDb;
}
type Action = (store: Store, data: ItemRequest, cb: Done<{ Item?: AttributeMap }>) => void;
interface ValidationModule {
  types: TypeSpec;
  custom(data: ItemRequest, store: Store): string | undefined;
}

const dynalite = require('dynalite') as (options: DynaliteOptions) => Server;
const db = require('dynalite/db') as {
  create(options: DynaliteOptions): Store;
  validateKey(key: AttributeMap | undefined, table: Table): DynaliteError | undefined;
  validateItem(item: AttributeMap | undefined, table: Table): DynaliteError | undefined;
  validateUpdates(attributeUpdates: undefined, expressionUpdates: unknown, table: Table): DynaliteError | undefined;
  validateKeyPaths(nestedPaths: unknown, table: Table): DynaliteError | undefined;
  createKey(item: AttributeMap, table: Table): string;
  validationError(message: string): DynaliteError;
};
const validations = require('dynalite/validations') as {
  checkTypes(data: unknown, types: TypeSpec): Record<string, unknown>;
  checkValidations(data: unknown, types: TypeSpec, custom: undefined, store: Store): void;
};
const putValidation = require('dynalite/validations/putItem') as ValidationModule;
const updateValidation = require('dynalite/validations/updateItem') as ValidationModule;
const deleteValidation = require('dynalite/validations/deleteItem') as ValidationModule;
const getValidation = require('dynalite/validations/getItem') as ValidationModule;
const deleteItem = require('dynalite/actions/deleteItem') as Action;
const getItem = require('dynalite/actions/getItem') as Action;

type WriteKind = 'Put' | 'Update' | 'Delete' | 'ConditionCheck';
const WRITE_KINDS: WriteKind[] = ['Put', 'Update', 'Delete', 'ConditionCheck'];
// A ConditionCheck is a delete whose writes are dropped: same parsing, same condition check.
const ACTIONS: Record<WriteKind, Action> = {
  Put: require('dynalite/actions/putItem') as Action,
  Update: require('dynalite/actions/updateItem') as Action,
  Delete: deleteItem,
  ConditionCheck: deleteItem,
};
const VALIDATIONS: Record<WriteKind, ValidationModule> = {
  Put: putValidation,
  Update: updateValidation,
  Delete: deleteValidation,
  ConditionCheck: deleteValidation,
};

const pick = (types: TypeSpec, ...names: string[]): TypeSpec => Object.fromEntries(names.map((n) => [n, types[n]]));
const EXPRESSIONS = ['TableName', 'ConditionExpression', 'ExpressionAttributeNames', 'ExpressionAttributeValues'];
// Listed so that checkTypes, which drops every key it does not know, keeps it.
const ON_FAILURE = { ReturnValuesOnConditionCheckFailure: { type: 'String', enum: ['ALL_OLD', 'NONE'] } };
const transactItems = (children: TypeSpec): TypeSpec => ({
  type: 'List',
  notNull: true,
  lengthGreaterThanOrEqual: 1,
  lengthLessThanOrEqual: 100,
  children,
});
const struct = (name: string, children: TypeSpec, extra: TypeSpec = {}): TypeSpec => ({ type: `FieldStruct<${name}>`, ...extra, children });

const WRITE_TYPES: TypeSpec = {
  ...pick(putValidation.types, 'ReturnConsumedCapacity', 'ReturnItemCollectionMetrics'),
  ClientRequestToken: { type: 'String', lengthGreaterThanOrEqual: 1, lengthLessThanOrEqual: 36 },
  TransactItems: transactItems({
    type: 'ValueStruct<TransactWriteItem>',
    children: {
      Put: struct('Put', { ...pick(putValidation.types, 'Item', ...EXPRESSIONS), ...ON_FAILURE }),
      Update: struct('Update', {
        ...pick(updateValidation.types, 'Key', ...EXPRESSIONS),
        UpdateExpression: { type: 'String', notNull: true },
        ...ON_FAILURE,
      }),
      Delete: struct('Delete', { ...pick(deleteValidation.types, 'Key', ...EXPRESSIONS), ...ON_FAILURE }),
      ConditionCheck: struct('ConditionCheck', {
        ...pick(deleteValidation.types, 'Key', ...EXPRESSIONS),
        ConditionExpression: { type: 'String', notNull: true },
        ...ON_FAILURE,
      }),
    },
  }),
};
const GET_TYPES: TypeSpec = {
  ...pick(getValidation.types, 'ReturnConsumedCapacity'),
  TransactItems: transactItems({
    type: 'ValueStruct<TransactGetItem>',
    children: {
      Get: struct('Get', pick(getValidation.types, 'TableName', 'Key', 'ProjectionExpression', 'ExpressionAttributeNames'), { notNull: true }),
    },
  }),
};

interface Target {
  tableName: string;
  key: string;
}
interface CancellationReason {
  Code: string;
  Message?: string;
  Item?: AttributeMap;
}

/**
 * Creates a dynalite server (not yet listening) that also serves `TransactWriteItems` and
 * `TransactGetItems`; every other operation is served by dynalite unchanged.
 */
export function createDynaliteWithTransactions(options: DynaliteOptions): Server {
  // dynalite() builds its store with db.create() and keeps it private: borrow that call.
  const create = db.create;
  let store: Store | undefined;
  db.create = (opts) => (store = create(opts));
  let server: Server;
  try {
    server = dynalite(options);
  } finally {
    db.create = create;
  }
  if (!store) throw new Error('dynalite did not create its store through dynalite/db.create()');

  const handlers = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  if (handlers.length !== 1) throw new Error(`expected one dynalite request listener, found ${handlers.length}`);
  const operations: Record<string, (body: Record<string, unknown>) => Promise<object>> = {
    'DynamoDB_20120810.TransactWriteItems': transactWriteItems.bind(null, store, new RequestTokens()),
    'DynamoDB_20120810.TransactGetItems': transactGetItems.bind(null, store),
  };
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const operation = req.method === 'POST' ? operations[String(req.headers['x-amz-target'])] : undefined;
    if (operation) void serve(req, res, operation);
    else handlers[0].call(server, req, res);
  });
  return server;
}

async function transactWriteItems(store: Store, tokens: RequestTokens, body: Record<string, unknown>): Promise<object> {
  const fingerprint = JSON.stringify(body.TransactItems);
  const data = parse(body, WRITE_TYPES, store);
  const writes = (data.TransactItems as Array<Partial<Record<WriteKind, ItemRequest>>>).map((item) => {
    const kinds = WRITE_KINDS.filter((kind) => item[kind] != null);
    if (kinds.length !== 1) throw db.validationError('TransactItems can only contain one of Check, Put, Update or Delete');
    const request = item[kinds[0]] as ItemRequest;
    check(VALIDATIONS[kinds[0]].custom(request, store));
    return { kind: kinds[0], request };
  });
  const tables = await getTables(
    store,
    writes.map((w) => w.request.TableName),
  );
  const targets = writes.map(({ kind, request }) => {
    const table = tables.get(request.TableName) as Table;
    const invalid =
      kind === 'Put'
        ? db.validateItem(request.Item, table)
        : (db.validateKey(request.Key, table) ?? (kind === 'Update' ? db.validateUpdates(undefined, request._updates, table) : undefined));
    if (invalid) throw invalid;
    return { kind, request, table, tableName: request.TableName, key: db.createKey((request.Item ?? request.Key) as AttributeMap, table) };
  });
  const itemIds = new Set(targets.map((t) => JSON.stringify([t.tableName, t.key])));
  if (itemIds.size !== targets.length) throw db.validationError('Transaction request cannot include multiple operations on one item');

  const token = data.ClientRequestToken as string | undefined;
  if (tokens.alreadySucceeded(token, fingerprint)) return {};

  await withItemLocks(store, targets, async () => {
    const staged = await Promise.all(targets.map((t) => stage(store, t.kind, t.request, t.table)));
    if (staged.some((s) => s.reason.Code !== 'None')) {
      const reasons = staged.map((s) => s.reason);
      const codes = reasons.map((r) => r.Code).join(', ');
      throw apiError('TransactionCanceledException', `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes}]`, {
        CancellationReasons: reasons,
      });
    }
    const ops = staged.flatMap((s) => s.writes.flatMap((w) => withPrefix(store, w.subDb, w.op)));
    await call<void>((done) => store.db.batch(ops, done));
  });
  tokens.remember(token, fingerprint);
  return {};
}

/** ClientRequestToken as DynamoDB treats it: a repeat within 10 minutes succeeds without running again. */
class RequestTokens {
  private readonly succeeded = new Map<string, { fingerprint: string; expiresAt: number }>();

  /** Throws if the token was used with other parameters. */
  alreadySucceeded(token: string | undefined, fingerprint: string): boolean {
    for (const [expired, { expiresAt }] of this.succeeded) {
      if (expiresAt > Date.now()) break; // the map is in expiry order
      this.succeeded.delete(expired);
    }
    const earlier = token === undefined ? undefined : this.succeeded.get(token);
    if (earlier && earlier.fingerprint !== fingerprint) {
      throw apiError('IdempotentParameterMismatchException', 'ClientRequestToken was already used with different request parameters');
    }
    return earlier !== undefined;
  }

  remember(token: string | undefined, fingerprint: string): void {
    if (token !== undefined) this.succeeded.set(token, { fingerprint, expiresAt: Date.now() + 10 * 60_000 });
  }
}

/** Runs dynalite's own action for one sub-action against a store that records its writes. */
async function stage(store: Store, kind: WriteKind, request: ItemRequest, table: Table) {
  const writes: Array<{ subDb: SubDb; op: BatchOp }> = [];
  let current: AttributeMap | undefined;
  const recording = (subDb: SubDb, readsItem: boolean): SubDb => ({
    ...subDb,
    lock: (_keys, exec) => exec((done) => done), // the caller already holds this item's lock
    get: (key, cb) =>
      subDb.get(key, (err, item) => {
        if (readsItem) current = item;
        cb(err, item);
      }),
    put: (key, value, cb) => {
      writes.push({ subDb, op: { type: 'put', key, value } });
      process.nextTick(cb);
    },
    del: (key, cb) => {
      writes.push({ subDb, op: { type: 'del', key } });
      process.nextTick(cb);
    },
  });
  const staging: Store = {
    ...store,
    getTable: (_name, checkStatus, cb) => (typeof checkStatus === 'function' ? checkStatus : cb)?.(null, table),
    getItemDb: (name) => recording(store.getItemDb(name), true),
    getIndexDb: (type, tableName, index) => recording(store.getIndexDb(type, tableName, index), false),
  };
  const err = await new Promise<DynaliteError | null | undefined>((resolve) => ACTIONS[kind](staging, request, resolve));
  if (!err) return { reason: { Code: 'None' } as CancellationReason, writes: kind === 'ConditionCheck' ? [] : writes };
  if (!err.body) throw err;
  const failedCondition = err.body.__type.endsWith('#ConditionalCheckFailedException');
  const reason: CancellationReason = { Code: failedCondition ? 'ConditionalCheckFailed' : 'ValidationError', Message: err.body.message };
  if (failedCondition && current && request.ReturnValuesOnConditionCheckFailure === 'ALL_OLD') reason.Item = current;
  return { reason, writes: [] };
}

/**
 * The main-database form of a sub-database write. dynalite's sub-databases only prefix keys and
 * forward to `store.db.batch`, synchronously; borrowing that keeps its key layout its own business
 * while letting one batch span the items and indexes of several tables.
 */
function withPrefix(store: Store, subDb: SubDb, op: BatchOp): BatchOp[] {
  const forward = store.db.batch;
  const prefixed: BatchOp[] = [];
  store.db.batch = (ops) => {
    prefixed.push(...ops);
  };
  try {
    subDb.batch([op], () => undefined);
  } finally {
    store.db.batch = forward;
  }
  return prefixed;
}

async function transactGetItems(store: Store, body: Record<string, unknown>): Promise<object> {
  const data = parse(body, GET_TYPES, store);
  const gets = (data.TransactItems as Array<{ Get: ItemRequest }>).map(({ Get }) => {
    check(getValidation.custom(Get, store));
    return Get;
  });
  const tables = await getTables(
    store,
    gets.map((g) => g.TableName),
  );
  const targets = gets.map((get) => {
    const table = tables.get(get.TableName) as Table;
    const invalid = db.validateKey(get.Key, table) ?? db.validateKeyPaths(get._projection?.nestedPaths, table);
    if (invalid) throw invalid;
    return { tableName: get.TableName, key: db.createKey(get.Key as AttributeMap, table) };
  });
  // getItem takes no lock, so it can run while ours are held: no transaction is half-visible.
  const results = await withItemLocks(store, targets, () => Promise.all(gets.map((get) => call<{ Item?: AttributeMap }>((done) => getItem(store, get, done)))));
  return { Responses: results.map((r) => (r.Item ? { Item: r.Item } : {})) };
}

/**
 * Holds the item locks of all targets while `critical` runs. One `lock` call per table queues
 * all of that table's keys at once, and tables are taken in name order, so two transactions
 * can never each hold what the other waits for. The lock is not re-entrant: keys are deduplicated.
 */
async function withItemLocks<T>(store: Store, targets: Target[], critical: () => Promise<T>): Promise<T> {
  const keysByTable = new Map<string, Set<string>>();
  for (const { tableName, key } of targets) keysByTable.set(tableName, (keysByTable.get(tableName) ?? new Set()).add(key));
  const unlocks: Array<() => void> = [];
  try {
    for (const tableName of [...keysByTable.keys()].sort()) {
      const itemDb = store.getItemDb(tableName);
      unlocks.push(
        await new Promise<() => void>((resolve) => itemDb.lock([...(keysByTable.get(tableName) ?? [])], (release) => resolve(release(() => undefined)))),
      );
    }
    return await critical();
  } finally {
    for (const unlock of unlocks) unlock();
  }
}

async function getTables(store: Store, names: string[]): Promise<Map<string, Table>> {
  const unique = [...new Set(names)];
  const tables = await Promise.all(unique.map((name) => call<Table>((done) => store.getTable(name, true, done))));
  return new Map(unique.map((name, i) => [name, tables[i]]));
}

function parse(body: Record<string, unknown>, types: TypeSpec, store: Store): Record<string, unknown> {
  const data = validations.checkTypes(body, types);
  validations.checkValidations(data, types, undefined, store);
  return data;
}

function check(message: string | undefined): void {
  if (message) throw db.validationError(message);
}

function apiError(type: string, message: string, fields: Record<string, unknown> = {}): DynaliteError {
  return Object.assign(new Error(message), {
    statusCode: 400,
    body: { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message, ...fields },
  });
}

function call<T>(run: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** Reads a JSON request and writes the reply the way dynalite's own handler does. */
async function serve(req: IncomingMessage, res: ServerResponse, operation: (body: Record<string, unknown>) => Promise<object>) {
  let status = 200;
  let reply: object;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw Object.assign(new Error('SerializationException'), {
        statusCode: 400,
        body: { __type: 'com.amazon.coral.service#SerializationException' },
      });
    }
    reply = await operation(body as Record<string, unknown>);
  } catch (err) {
    const { statusCode, body, message } = err as DynaliteError;
    status = statusCode ?? 500;
    reply = body ?? { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message };
  }
  const json = JSON.stringify(reply);
  const contentType = String(req.headers['content-type']).split(';')[0].trim();
  res.writeHead(status, {
    'x-amzn-RequestId': randomBytes(39).toString('base64').toUpperCase().replace(/\+|\//g, '0'),
    'x-amz-crc32': crc32(json),
    'Content-Type': contentType === 'application/x-amz-json-1.0' ? contentType : 'application/json',
    'Content-Length': Buffer.byteLength(json),
  });
  res.end(json);
}
