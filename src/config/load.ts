// Config loading for every stage: YAML files with `extends`, `--set key=value` overrides, validated
// against the stage's zod schema, with errors that name the file and the key path.
//
// Merge order (later wins): schema defaults < opts.base < extended files (in listed order, each
// resolved recursively) < the file itself < --set overrides (in order). Objects deep-merge; arrays
// and scalars replace; a null replaces too.
//
// Unknown keys: the schema is walked here, so callers' schemas need not be `.strict()`. Every key in
// every file, in base and in each --set must exist in the schema; an object with a catchall
// (z.looseObject, .catchall()) or a z.record accepts any key below it. Keys are checked before zod
// runs, so zod's default stripping never silently drops a typo.
//
// Schema defaults: zod 4's `.default({})` on an object returns `{}` as is, without filling in the
// inner fields' defaults, and a partial object from a file would skip the container's default
// entirely. So the defaults of object containers (`.default(obj)` / `.prefault(obj)` on a z.object)
// are merged in here as the lowest layer; leaf defaults are left to zod.
//
// `extends` is reserved at the top level of a YAML file: a path or a list of paths, relative to
// that file.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';

/** A user-facing config problem: print its message, not its stack. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadConfigOptions {
  /** A YAML config file (may use `extends`). */
  file?: string;
  /** `a.b.c=value` overrides; values are parsed as YAML. */
  sets?: string[];
  /** Values below the files, above schema defaults (e.g. a stage's preset). */
  base?: unknown;
}

type Plain = Record<string, unknown>;
type Segment = string | number;
interface Layer {
  /** Where the values came from, as shown in errors: a file, `base`, `--set k=v`. */
  label: string;
  value: Plain;
}

export function loadConfig<S extends z.ZodType>(schema: S, opts: LoadConfigOptions): z.infer<S> {
  const layers: Layer[] = [{ label: 'schema default', value: schemaDefaults(schema) }];
  if (opts.base !== undefined) {
    if (!isPlain(opts.base)) throw new ConfigError(`base config: expected a mapping, got ${describe(opts.base)}`);
    layers.push(checkedLayer(schema, { label: 'base config', value: opts.base }));
  }
  if (opts.file !== undefined) {
    for (const layer of fileLayers(path.resolve(opts.file), [])) layers.push(checkedLayer(schema, layer));
  }
  for (const set of opts.sets ?? []) layers.push(setLayer(schema, set));

  let merged: Plain = {};
  const origins = new Map<string, string>();
  for (const layer of layers) {
    merged = deepMerge(merged, layer.value) as Plain;
    recordOrigins(layer.value, [], layer.label, origins);
  }
  const result = schema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => formatIssue(issue, origins)).join('\n'));
  }
  return result.data;
}

/** The config as YAML, for --dry-run and the run directory; loadConfig reads it back unchanged. */
export function formatConfig(cfg: unknown): string {
  return YAML.stringify(cfg, { lineWidth: 0, aliasDuplicateObjects: false });
}

// ---------------------------------------------------------------------------------------------
// Files and extends

function fileLayers(file: string, chain: string[]): Layer[] {
  if (chain.includes(file)) {
    throw new ConfigError(`config extends cycle: ${[...chain, file].map(displayPath).join(' -> ')}`);
  }
  const shown = displayPath(file);
  const { extends: parents, ...own } = readYamlMapping(file, shown);
  const layers: Layer[] = [];
  for (const parent of extendsList(parents, shown)) {
    const parentFile = path.resolve(path.dirname(file), parent);
    if (!fs.existsSync(parentFile)) {
      throw new ConfigError(`${shown}: extends "${parent}": config file not found: ${displayPath(parentFile)}`);
    }
    layers.push(...fileLayers(parentFile, [...chain, file]));
  }
  layers.push({ label: shown, value: own });
  return layers;
}

function extendsList(value: unknown, shown: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
  throw new ConfigError(`${shown}: "extends" must be a path or a list of paths`);
}

function readYamlMapping(file: string, shown: string): Plain {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(`config file not found: ${shown}`);
    throw new ConfigError(`${shown}: ${(err as Error).message}`);
  }
  const doc = YAML.parseDocument(text);
  const syntaxError = doc.errors[0];
  if (syntaxError) {
    const pos = syntaxError.linePos?.[0];
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    const reason = syntaxError.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${shown}: YAML syntax error${where}: ${reason}`);
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (!isPlain(value)) throw new ConfigError(`${shown}: expected a mapping of config keys, got ${describe(value)}`);
  return value;
}

function displayPath(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

// ---------------------------------------------------------------------------------------------
// --set overrides

function setLayer(schema: z.ZodType, set: string): Layer {
  const eq = set.indexOf('=');
  const key = eq > 0 ? set.slice(0, eq).trim() : '';
  const segments = key.split('.');
  if (!key || segments.some((s) => s === '')) {
    throw new ConfigError(`--set expects key=value (e.g. train.lr=1e-3), got "${set}"`);
  }
  const raw = set.slice(eq + 1);
  let value: unknown = '';
  if (raw.trim() !== '') {
    try {
      value = YAML.parse(raw);
    } catch (err) {
      throw new ConfigError(`--set ${set}: cannot parse the value as YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  let node: z.ZodType = schema;
  for (const segment of segments) {
    const child = childSchema(node, segment);
    if (!child) throw new ConfigError(`unknown config key "${key}"${didYouMean(key, [], schema)}`);
    node = child;
  }
  const unknown = unknownKeys(node, value, segments);
  if (unknown.length > 0) {
    throw new ConfigError(
      unknown.map((u) => `unknown config key "${joinPath(u.path)}"${didYouMean(joinPath(u.path), u.siblings, schema)}`).join('\n'),
    );
  }
  let nested: unknown = value;
  for (const segment of [...segments].reverse()) nested = { [segment]: nested };
  return { label: `--set ${set}`, value: nested as Plain };
}

function checkedLayer(schema: z.ZodType, layer: Layer): Layer {
  const unknown = unknownKeys(schema, layer.value, []);
  if (unknown.length > 0) {
    throw new ConfigError(
      unknown
        .map((u) => `${layer.label}: unknown key "${joinPath(u.path)}"${didYouMean(joinPath(u.path), u.siblings, schema)}`)
        .join('\n'),
    );
  }
  return layer;
}

// ---------------------------------------------------------------------------------------------
// Walking zod 4 schemas (through their `_zod.def`, which every schema type has)

interface Def {
  type: string;
  [key: string]: unknown;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'nonoptional', 'readonly', 'catch']);

/** The schema under default/optional/nullable/readonly/catch/pipe/lazy wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  for (let depth = 0; depth < 64; depth++) {
    const def = defOf(schema);
    if (WRAPPERS.has(def.type)) schema = def.innerType as z.ZodType;
    else if (def.type === 'pipe') {
      // z.preprocess(fn, s) is pipe(transform, s): the keys live in s. Otherwise in the input side.
      const input = def.in as z.ZodType;
      schema = defOf(input).type === 'transform' ? (def.out as z.ZodType) : input;
    } else if (def.type === 'lazy') schema = (def.getter as () => z.ZodType)();
    else return schema;
  }
  return schema;
}

const ANY = z.unknown();

/** The schema of `key` under `schema`, or undefined when the key cannot exist there. */
function childSchema(schema: z.ZodType, key: string): z.ZodType | undefined {
  const core = unwrap(schema);
  const def = defOf(core);
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      if (Object.hasOwn(shape, key)) return shape[key];
      const catchall = def.catchall as z.ZodType | undefined;
      return catchall && defOf(catchall).type !== 'never' ? catchall : undefined;
    }
    case 'record':
      return def.valueType as z.ZodType;
    case 'union':
      for (const option of def.options as z.ZodType[]) {
        const child = childSchema(option, key);
        if (child) return child;
      }
      return undefined;
    case 'intersection':
      return childSchema(def.left as z.ZodType, key) ?? childSchema(def.right as z.ZodType, key);
    case 'any':
    case 'unknown':
      return ANY;
    default:
      return undefined;
  }
}

interface UnknownKey {
  path: Segment[];
  /** Full paths of the keys that do exist beside it: the first candidates for a suggestion. */
  siblings: string[];
}

/** Keys of `value` that the schema does not have (objects, and objects inside arrays). */
function unknownKeys(schema: z.ZodType, value: unknown, at: Segment[]): UnknownKey[] {
  const core = unwrap(schema);
  const def = defOf(core);
  if (Array.isArray(value)) {
    if (def.type !== 'array') return [];
    return value.flatMap((item, i) => unknownKeys(def.element as z.ZodType, item, [...at, i]));
  }
  if (!isPlain(value)) return [];
  switch (def.type) {
    case 'object': {
      const shape = def.shape as Record<string, z.ZodType>;
      const out: UnknownKey[] = [];
      for (const [key, child] of Object.entries(value)) {
        const childSchemaForKey = childSchema(core, key);
        if (childSchemaForKey) out.push(...unknownKeys(childSchemaForKey, child, [...at, key]));
        else out.push({ path: [...at, key], siblings: Object.keys(shape).map((k) => joinPath([...at, k])) });
      }
      return out;
    }
    case 'record':
      return Object.entries(value).flatMap(([key, child]) => unknownKeys(def.valueType as z.ZodType, child, [...at, key]));
    case 'union': {
      // Accept if any option accepts; otherwise report against the closest option.
      let best: UnknownKey[] | undefined;
      for (const option of def.options as z.ZodType[]) {
        const found = unknownKeys(option, value, at);
        if (found.length === 0) return [];
        if (!best || found.length < best.length) best = found;
      }
      return best ?? [];
    }
    case 'intersection': {
      const right = new Set(unknownKeys(def.right as z.ZodType, value, at).map((u) => joinPath(u.path)));
      return unknownKeys(def.left as z.ZodType, value, at).filter((u) => right.has(joinPath(u.path)));
    }
    default:
      return []; // a leaf: a wrong type is zod's to report
  }
}

/** Every dotted key path reachable through object shapes (not records or arrays). */
function schemaPaths(schema: z.ZodType, prefix: string, out: string[], depth = 0): string[] {
  if (depth > 12) return out;
  const def = defOf(unwrap(schema));
  if (def.type === 'object') {
    for (const [key, child] of Object.entries(def.shape as Record<string, z.ZodType>)) {
      const full = prefix ? `${prefix}.${key}` : key;
      out.push(full);
      schemaPaths(child, full, out, depth + 1);
    }
  } else if (def.type === 'union') {
    for (const option of def.options as z.ZodType[]) schemaPaths(option, prefix, out, depth + 1);
  }
  return out;
}

/**
 * Container defaults as a lowest config layer: for every object-typed field with `.default(obj)` or
 * `.prefault(obj)`, that object merged over the container defaults nested inside it.
 */
function schemaDefaults(schema: z.ZodType): Plain {
  const own = containerDefault(schema, 0);
  if (own !== undefined) return own;
  const core = unwrap(schema);
  return defOf(core).type === 'object' ? objectSkeleton(core, 0) : {};
}

function containerDefault(schema: z.ZodType, depth: number): Plain | undefined {
  const def = defOf(schema);
  if (depth > 32 || (def.type !== 'default' && def.type !== 'prefault')) return undefined;
  const value = def.defaultValue;
  const core = unwrap(def.innerType as z.ZodType);
  if (!isPlain(value) || defOf(core).type !== 'object') return undefined;
  return deepMerge(objectSkeleton(core, depth + 1), value) as Plain;
}

function objectSkeleton(objectSchema: z.ZodType, depth: number): Plain {
  const out: Plain = {};
  for (const [key, field] of Object.entries(defOf(objectSchema).shape as Record<string, z.ZodType>)) {
    const value = containerDefault(field, depth);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Merging and provenance

function isPlain(value: unknown): value is Plain {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Objects merge key by key (a copy; inputs are not modified); anything else in `over` replaces. */
function deepMerge(under: unknown, over: unknown): unknown {
  if (!isPlain(over)) return over;
  const out: Plain = isPlain(under) ? { ...under } : {};
  for (const [key, value] of Object.entries(over)) {
    if (value !== undefined) out[key] = deepMerge(out[key], value);
  }
  return out;
}

/** Notes which layer last set each leaf, so a type error can name the file it came from. */
function recordOrigins(value: unknown, at: Segment[], label: string, origins: Map<string, string>): void {
  if (isPlain(value) && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) recordOrigins(child, [...at, key], label, origins);
    return;
  }
  if (at.length === 0) return;
  const key = joinPath(at);
  for (const existing of [...origins.keys()]) if (existing.startsWith(key + '.')) origins.delete(existing);
  origins.set(key, label);
}

function originOf(at: readonly PropertyKey[], origins: Map<string, string>): string | undefined {
  for (let n = at.length; n > 0; n--) {
    const label = origins.get(joinPath(at.slice(0, n)));
    if (label !== undefined) return label;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Messages

function joinPath(at: readonly PropertyKey[]): string {
  return at.map(String).join('.');
}

function formatIssue(issue: z.core.$ZodIssue, origins: Map<string, string>): string {
  const at = joinPath(issue.path);
  const origin = originOf(issue.path, origins);
  const prefix = (origin && origin !== 'schema default' ? `${origin}: ` : '') + (at ? `${at}: ` : '');
  return prefix + issueMessage(issue);
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined ? `missing (expected ${issue.expected})` : `expected ${issue.expected}, received ${describe(input)}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}, received ${describe(input)}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_union': {
      // A union of leaf types (number | string): say which ones it accepts.
      const expected = issue.errors.map((branch) =>
        branch.length === 1 && branch[0].code === 'invalid_type' && branch[0].path.length === 0 ? branch[0].expected : undefined,
      );
      if (expected.length > 0 && expected.every((e) => e !== undefined)) {
        return `expected ${expected.join(' | ')}, received ${describe(input)}`;
      }
      break;
    }
  }
  const message = issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  return input === undefined || isPlain(input) ? message : `${message}, received ${describe(input)}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value) ?? String(value);
  const short = json.length > 60 ? json.slice(0, 57) + '...' : json;
  if (Array.isArray(value)) return `array ${short}`;
  return `${typeof value} ${short}`;
}

function didYouMean(given: string, siblings: string[], schema: z.ZodType): string {
  const matches = closeMatches(given, [...new Set([...siblings, ...schemaPaths(schema, '', [])])]);
  if (matches.length === 0) return '';
  const quoted = matches.map((m) => `"${m}"`);
  const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
  return ` (did you mean ${list}?)`;
}

/** Up to 3 known paths within a small edit distance of `given`, or with the same last segment. */
function closeMatches(given: string, known: string[]): string[] {
  const last = given.slice(given.lastIndexOf('.') + 1);
  const limit = Math.max(1, Math.floor(last.length / 3));
  return known
    .filter((k) => k !== given)
    .map((k) => ({ k, d: editDistance(given, k), sameLeaf: k.slice(k.lastIndexOf('.') + 1) === last }))
    .filter(({ d, sameLeaf }) => d <= limit || sameLeaf)
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k))
    .slice(0, 3)
    .map(({ k }) => k);
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push(Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
