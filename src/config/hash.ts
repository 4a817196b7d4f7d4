// Content hashes of configs and stage inputs: the same value always gives the same hash, whatever the
// key order of its objects, so a stage cache keyed by hashOf(inputs) survives config reformatting.
import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level. Otherwise like JSON.stringify: toJSON() is honoured,
 * undefined/function/symbol object members are dropped (and become null in arrays). Unlike JSON,
 * non-finite numbers stay distinct ("NaN", "Infinity", "-Infinity" as strings, rather than all
 * collapsing to null) and bigints are written as decimal strings. Cycles throw.
 */
export function stableStringify(value: unknown): string {
  const out = encode(value, new Set());
  return out === undefined ? 'null' : out;
}

function encode(value: unknown, stack: Set<object>): string | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : JSON.stringify(String(value));
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (stack.has(obj)) throw new TypeError('stableStringify: value contains a cycle');
  stack.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    out = '[' + obj.map((item) => encode(item, stack) ?? 'null').join(',') + ']';
  } else {
    const parts: string[] = [];
    for (const key of Object.keys(obj).sort()) {
      const encoded = encode((obj as Record<string, unknown>)[key], stack);
      if (encoded !== undefined) parts.push(JSON.stringify(key) + ':' + encoded);
    }
    out = '{' + parts.join(',') + '}';
  }
  stack.delete(obj);
  return out;
}

/** Full sha256 hex digest of bytes or text (file and content checks). */
export function sha256Hex(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The first 16 hex characters (64 bits) of sha256(stableStringify(value)). */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex').slice(0, 16);
}
