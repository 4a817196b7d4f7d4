// Progress bars on stderr for people, and the one way to print a human line while a bar is drawn.
//
// Bars live in one shared cli-progress MultiBar (not SingleBar: SingleBar restores a saved cursor
// position when it stops, which lands on the wrong line once log lines have scrolled the screen).
// printAboveProgress() writes a line above the bars and redraws them at once, so log lines and bars
// never garble each other. Other writes to stderr while a bar is active (console.error) are not
// coordinated: route human output through the logger.
import cliProgress from 'cli-progress';

export type ProgressPayload = Record<string, unknown>;

export interface Progress {
  /** Sets the current value; payload fields (e.g. loss, tokens_per_s) are shown after the bar. */
  update(value: number, payload?: ProgressPayload): void;
  increment(delta?: number, payload?: ProgressPayload): void;
  /** Final redraw and release of the terminal line; safe to call more than once. */
  stop(): void;
}

export interface ProgressOptions {
  /** Default: on unless $CI is set. Never on when stderr is not a terminal. */
  enabled?: boolean;
}

const NO_PROGRESS: Progress = { update() {}, increment() {}, stop() {} };

let multibar: cliProgress.MultiBar | null = null;
let activeBars = 0;

export function createProgress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  // A bar needs a terminal to redraw in place, whatever `enabled` says.
  if (!(opts.enabled ?? !process.env.CI) || process.stderr.isTTY !== true) return NO_PROGRESS;
  multibar ??= new cliProgress.MultiBar({
    stream: process.stderr,
    barsize: 30,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    hideCursor: false,
    // Keep the terminal's own line wrapping on (cli-progress turns it off by default, and leaves it
    // off if the process dies); the bar line itself is cut to the terminal width instead.
    linewrap: true,
    // Redraw every frame even when unchanged: a line printed above the bar clears it.
    forceRedraw: true,
    autopadding: true,
  });
  const bars = multibar;
  // A per-bar format so each bar shows its own label.
  const bar = bars.create(total, 0, {}, { format: (options, params, payload) => formatBar(label, options, params, payload as ProgressPayload) });
  activeBars++;
  let stopped = false;
  return {
    update: (value, payload) => {
      if (!stopped) bar.update(value, payload ?? {});
    },
    increment: (delta = 1, payload) => {
      if (!stopped) bar.increment(delta, payload ?? {});
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
      if (--activeBars === 0) {
        bars.stop();
        if (multibar === bars) multibar = null;
      }
    },
  };
}

/** Writes one human line to stderr, above any active progress bar. */
export function printAboveProgress(line: string): void {
  if (multibar) {
    multibar.log(line + '\n');
    multibar.update();
  } else {
    process.stderr.write(line + '\n');
  }
}

function formatBar(label: string, options: cliProgress.Options, params: cliProgress.Params, payload: ProgressPayload): string {
  const base = cliProgress.Format.Formatter(
    { ...options, format: `${label} {bar} {percentage}% {value}/{total} | {duration_formatted} eta {eta_formatted}` },
    params,
    {},
  );
  const fields = Object.entries(payload)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k} ${formatValue(v)}`);
  return fields.length > 0 ? `${base} | ${fields.join(' ')}` : base;
}

/**
 * Short human form of a logged or displayed value: integers as is, other numbers to 4 significant
 * digits, below 0.01 or from 1e6 up in exponent form without trailing zeros (1e-3, 2.5e+6).
 */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.message;
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? json.slice(0, 77) + '...' : json;
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x) || Number.isInteger(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1e-2 && abs < 1e6) return String(Number(x.toPrecision(4)));
  const [mantissa, exponent] = x.toExponential(3).split('e');
  return `${String(Number(mantissa))}e${exponent}`;
}
