/**
 * The API contract, docs/openapi.yaml, as a checker for replies: a reply whose route, status, media
 * type or body the contract does not describe is a violation. The HTTP tests pass every reply they
 * receive through it (`fetchInContract`), so the contract cannot drift from the code.
 *
 * @example
 * const reply = await fetchInContract(`${offline.url}/order/pay/status?order_id=503`, { headers: { token } });
 * expect(reply.json()).toMatchObject({ status: 200 });
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

export const CONTRACT_FILE = join(__dirname, '..', '..', 'docs', 'openapi.yaml');

/** One HTTP reply as a client saw it. */
export interface ObservedReply {
  method: string;
  /** The request's path, or its whole URL; a query string is ignored. */
  path: string;
  status: number;
  /** The `content-type` header, parameters included (`application/json; charset=utf-8`). */
  contentType: string | null;
  body: string;
}

interface MediaTypeObject {
  schema?: object;
}
interface ResponseObject {
  $ref?: string;
  content?: Record<string, MediaTypeObject>;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, { responses?: Record<string, ResponseObject> }>>;
}

/** The ajv id under which the whole document is registered, so that `#/components/...` references resolve. */
const DOCUMENT_ID = 'openapi.yaml';
/**
 * Keywords JSON Schema 2020-12 does not know, which validate nothing: OpenAPI's own inside schemas, and
 * the document's top-level fields (ajv compiles the document's root once, as the base of its references).
 */
const OPENAPI_KEYWORDS = ['discriminator', 'xml', 'externalDocs', 'example'];
const DOCUMENT_FIELDS = ['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags'];

/** A contract loaded and ready to check replies against. */
export interface Contract {
  /** Everything wrong with `reply` according to the contract; empty when it conforms. */
  violations(reply: ObservedReply): string[];
}

/**
 * Loads an OpenAPI 3.1 document (default: docs/openapi.yaml) and compiles its response schemas with
 * ajv's JSON Schema 2020-12 dialect and formats, lazily, once each.
 */
export function loadContract(file: string = CONTRACT_FILE): Contract {
  const document = parse(readFileSync(file, 'utf8')) as OpenApiDocument;
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
  addFormats(ajv);
  ajv.addVocabulary([...OPENAPI_KEYWORDS, ...DOCUMENT_FIELDS]);
  // The response schemas below are compiled as references into the whole document, so their own
  // `#/components/...` references resolve as they do for any OpenAPI tool.
  ajv.addSchema(document, DOCUMENT_ID);
  const compiled = new Map<string, ValidateFunction>();
  const validatorAt = (pointer: string) => {
    let validate = compiled.get(pointer);
    if (!validate) {
      validate = ajv.compile({ $ref: `${DOCUMENT_ID}#${pointer}` });
      compiled.set(pointer, validate);
    }
    return validate;
  };

  return {
    violations(reply) {
      const method = reply.method.toLowerCase();
      const path = new URL(reply.path, 'http://contract.invalid').pathname;
      const route = `${reply.method.toUpperCase()} ${path}`;
      const template = Object.keys(document.paths).find((candidate) => pathMatches(candidate, path));
      const operation = template === undefined ? undefined : document.paths[template][method];
      if (!template || !operation) return [`${route} is not in the contract`];

      const responses = operation.responses ?? {};
      const statusKey = [String(reply.status), `${String(reply.status)[0]}XX`, 'default'].find((key) => key in responses);
      if (!statusKey) return [`${route} answered HTTP ${reply.status}, which the contract does not list (it lists ${Object.keys(responses).join(', ')})`];
      let responsePointer = `/paths/${escapePointer(template)}/${method}/responses/${statusKey}`;
      let response = responses[statusKey];
      if (response.$ref) {
        responsePointer = response.$ref.replace(/^#/, '');
        response = resolvePointer(document, responsePointer) as ResponseObject;
      }
      const where = `${route} HTTP ${reply.status}`;

      if (!response.content) {
        return reply.body === '' ? [] : [`${where}: the contract describes no body, got ${JSON.stringify(reply.body.slice(0, 200))}`];
      }
      const mediaType = (reply.contentType ?? '').split(';')[0].trim().toLowerCase();
      const media = response.content[mediaType];
      if (!media)
        return [`${where}: content-type ${JSON.stringify(reply.contentType)} is not one the contract lists (${Object.keys(response.content).join(', ')})`];
      if (!media.schema) return [];

      let value: unknown = reply.body;
      if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
        try {
          value = JSON.parse(reply.body);
        } catch {
          return [`${where}: the body is not JSON: ${JSON.stringify(reply.body.slice(0, 200))}`];
        }
      }
      const schemaPointer = `${responsePointer}/content/${escapePointer(mediaType)}/schema`;
      if (validatorAt(schemaPointer)(value)) return [];
      const closest = closestMismatch(schemaPointer, value);
      return [`${where}: ${JSON.stringify(value)} does not match the contract; closest: ${closest.schema}`, ...closest.errors.map(describeError)];
    },
  };

  /**
   * Why `value` fails the schema at `pointer`, told from the `oneOf` branch it comes closest to (the
   * fewest errors), followed through references: "PayRefusal > OrderNotFound: /msg must be equal to
   * constant" rather than every branch's errors.
   */
  function closestMismatch(pointer: string, value: unknown): { schema: string; errors: ErrorObject[] } {
    const node = resolvePointer(document, pointer) as { $ref?: string; oneOf?: unknown[] };
    const name = pointer.startsWith('/components/schemas/') ? pointer.slice('/components/schemas/'.length) : 'the response schema';
    if (node.$ref && Object.keys(node).length === 1) return closestMismatch(node.$ref.replace(/^#/, ''), value);
    const validate = validatorAt(pointer);
    validate(value);
    const own = { schema: name, errors: validate.errors ?? [] };
    if (!Array.isArray(node.oneOf)) return own;
    const branches = node.oneOf.map((_, i) => `${pointer}/oneOf/${i}`);
    const failing = branches.filter((branch) => !validatorAt(branch)(value));
    if (failing.length < branches.length) return own; // several branches match: the oneOf error says so
    const [best] = failing.map((branch) => closestMismatch(branch, value)).sort((a, b) => a.errors.length - b.errors.length);
    return { schema: `${name} > ${best.schema}`, errors: best.errors };
  }
}

let defaultContract: Contract | undefined;

/** Throws, listing every violation, unless docs/openapi.yaml describes `reply`. */
export function assertReplyInContract(reply: ObservedReply): void {
  const violations = (defaultContract ??= loadContract()).violations(reply);
  if (violations.length > 0) throw new Error(`The reply is not in the API contract (${CONTRACT_FILE}):\n${violations.join('\n')}`);
}

/** A reply read whole, already checked against the contract. */
export interface ContractedReply {
  status: number;
  contentType: string | null;
  text: string;
  json<T = any>(): T;
}

/** `fetch`, then `assertReplyInContract` on the reply: the way the HTTP tests call the API. */
export async function fetchInContract(url: string, init: RequestInit = {}): Promise<ContractedReply> {
  const response = await fetch(url, init);
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  assertReplyInContract({ method: init.method ?? 'GET', path: url, status: response.status, contentType, body: text });
  return { status: response.status, contentType, text, json: () => JSON.parse(text) };
}

function describeError(error: ErrorObject): string {
  const params = error.params as { additionalProperty?: string; allowedValue?: unknown; allowedValues?: unknown[] };
  const detail =
    error.keyword === 'additionalProperties'
      ? `: ${params.additionalProperty}`
      : error.keyword === 'const'
        ? ` ${JSON.stringify(params.allowedValue)}`
        : error.keyword === 'enum'
          ? `: ${JSON.stringify(params.allowedValues)}`
          : '';
  return `  ${error.instancePath || '(body)'} ${error.message ?? error.keyword}${detail}`;
}

function pathMatches(template: string, path: string): boolean {
  const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}/]+\}/g, '[^/]+');
  return new RegExp(`^${pattern}$`).test(path);
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function resolvePointer(document: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>((node, segment) => (node as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')], document);
}
