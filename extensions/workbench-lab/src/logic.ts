/**
 * Pure logic of the extension: budgets, durations, metric series, plot scaling, parameter
 * values. No DOM and no JupyterLab imports, so `npm test` runs it under plain Node.
 */

export type JobState =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'lost';

export interface Job {
  id: number;
  request_id: number;
  user: string;
  tenant: string;
  name: string;
  state: JobState;
  profile: string;
  notebook_name: string;
  notebook_sha256?: string;
  parameters: Record<string, unknown>;
  created_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  elapsed_seconds: number | null;
  gpu_hours: number | null;
  cpu_hours: number | null;
  end_reason: string | null;
  error: string | null;
  rerun_of: number | null;
}

export interface Metric {
  id: number;
  name: string;
  step: number;
  value: number;
  at?: string;
}

export interface Artifact {
  id: number;
  name: string;
  tenant: string;
  stage: string;
  sha256: string;
  size: number;
  job_id: number | null;
  request_id: number | null;
  created_at: string;
}

export interface Parameter {
  name: string;
  inferred_type_name: string;
  default: string;
  help: string;
}

/** What `GET /workbench-lab/context` answers. */
export interface RequestContext {
  request_id: number;
  tenant: string;
  datasets: string[];
  profile: string;
  gpu_hours: number;
  gpu_hours_used: number;
  seconds_left: number | null;
  state: string;
  request: Record<string, unknown>;
}

export const ENDED_STATES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'cancelled',
  'lost'
]);

export function isEnded(state: string): boolean {
  return ENDED_STATES.has(state);
}

/** Below this share of the budget left, the status bar turns red. */
export const LOW_BUDGET = 0.1;

export interface Budget {
  total: number;
  used: number;
  left: number;
  /** Share of the budget left, 0..1; 1 when there is no GPU budget at all. */
  fraction: number;
  low: boolean;
}

export function budget(total: number, used: number): Budget {
  const t = Math.max(0, Number(total) || 0);
  const u = Math.max(0, Number(used) || 0);
  const left = Math.max(0, t - u);
  const fraction = t > 0 ? left / t : 1;
  return { total: t, used: u, left, fraction, low: t > 0 && fraction < LOW_BUDGET };
}

/** `3d 4h`, `2h 05m`, `4m 09s`, `12s`; `—` when unknown. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '—';
  }
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (d > 0) {
    return `${d}d ${h}h`;
  }
  if (h > 0) {
    return `${h}h ${pad(m)}m`;
  }
  if (m > 0) {
    return `${m}m ${pad(sec)}s`;
  }
  return `${sec}s`;
}

/** Hours with precision that suits their size: `0.004`, `0.25`, `12.5`, `130`. */
export function formatHours(hours: number | null | undefined): string {
  if (hours === null || hours === undefined || !isFinite(hours)) {
    return '—';
  }
  const a = Math.abs(hours);
  if (a === 0) {
    return '0';
  }
  const digits = a < 0.01 ? 3 : a < 10 ? 2 : a < 100 ? 1 : 0;
  return String(Number(hours.toFixed(digits)));
}

/** The status-bar line: `acme · 3h 12m left · GPU 1.5 of 2 h left`. */
export function statusText(ctx: RequestContext, secondsLeft: number | null): string {
  const b = budget(ctx.gpu_hours, ctx.gpu_hours_used);
  const time =
    secondsLeft === null ? ctx.state || 'not active' : `${formatDuration(secondsLeft)} left`;
  const gpu =
    b.total > 0 ? `GPU ${formatHours(b.left)} of ${formatHours(b.total)} h left` : 'no GPU';
  return `${ctx.tenant} · ${time} · ${gpu}`;
}

/**
 * Seconds a job has run: the service's figure as of `fetchedMs` (when the job was fetched),
 * plus the time since while it runs, so a browser clock that differs from the server's does
 * not matter; counted from `started_at` when the service gave no figure.
 */
export function elapsedSeconds(job: Job, nowMs: number, fetchedMs: number = nowMs): number | null {
  const running = job.state === 'running';
  if (typeof job.elapsed_seconds === 'number') {
    return job.elapsed_seconds + (running ? Math.max(0, (nowMs - fetchedMs) / 1000) : 0);
  }
  if (!job.started_at) {
    return null;
  }
  const start = Date.parse(job.started_at);
  const end = job.ended_at ? Date.parse(job.ended_at) : nowMs;
  return isNaN(start) || isNaN(end) ? null : Math.max(0, (end - start) / 1000);
}

export interface Point {
  x: number;
  y: number;
}

/** Metric points by name, each series sorted by step; kept in first-seen name order. */
export type Series = Map<string, Point[]>;

/**
 * Adds metrics fetched with `?after=` to the series; the same metric id twice (a poll that
 * overlapped) is counted once. Returns the highest id seen, for the next poll.
 */
export function addMetrics(
  series: Series,
  metrics: Metric[],
  after: number,
  seen: Set<number> = new Set()
): number {
  let last = after;
  const touched = new Set<string>();
  for (const m of metrics) {
    if (seen.has(m.id) || typeof m.value !== 'number' || !isFinite(m.value)) {
      last = Math.max(last, m.id);
      continue;
    }
    seen.add(m.id);
    last = Math.max(last, m.id);
    let points = series.get(m.name);
    if (!points) {
      points = [];
      series.set(m.name, points);
    }
    points.push({ x: m.step, y: m.value });
    touched.add(m.name);
  }
  for (const name of touched) {
    series.get(name)!.sort((a, b) => a.x - b.x);
  }
  return last;
}

export interface Scale {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  width: number;
  height: number;
  pad: number;
}

/** The domain of all series, widened where a series is flat or a single point. */
export function scaleFor(series: Series, width: number, height: number, pad = 24): Scale {
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const points of series.values()) {
    for (const p of points) {
      x0 = Math.min(x0, p.x);
      x1 = Math.max(x1, p.x);
      y0 = Math.min(y0, p.y);
      y1 = Math.max(y1, p.y);
    }
  }
  if (!isFinite(x0)) {
    x0 = 0;
    x1 = 1;
    y0 = 0;
    y1 = 1;
  }
  if (x1 === x0) {
    x1 = x0 + 1;
  }
  if (y1 === y0) {
    const d = Math.abs(y0) > 0 ? Math.abs(y0) * 0.1 : 1;
    y0 -= d;
    y1 += d;
  }
  return { x0, x1, y0, y1, width, height, pad };
}

/** Data → SVG coordinates (y grows downwards in SVG). */
export function project(p: Point, s: Scale): Point {
  const w = s.width - 2 * s.pad;
  const h = s.height - 2 * s.pad;
  return {
    x: s.pad + ((p.x - s.x0) / (s.x1 - s.x0)) * w,
    y: s.pad + (1 - (p.y - s.y0) / (s.y1 - s.y0)) * h
  };
}

/** The `d` attribute of an SVG path through the points. */
export function pathData(points: Point[], s: Scale): string {
  return points
    .map((p, i) => {
      const q = project(p, s);
      return `${i === 0 ? 'M' : 'L'}${q.x.toFixed(1)},${q.y.toFixed(1)}`;
    })
    .join(' ');
}

/** Short axis labels: `0.0012`, `3.5`, `1.2k`, `4.0M`. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) {
    return `${(v / 1e6).toFixed(1)}M`;
  }
  if (a >= 1e4) {
    return `${(v / 1e3).toFixed(1)}k`;
  }
  if (a === 0 || a >= 100) {
    return String(Math.round(v));
  }
  return String(Number(v.toPrecision(3)));
}

/**
 * A parameter as typed in the dialog → the JSON value to send. Papermill reports defaults as
 * Python source (`'adam'`, `0.01`, `True`, `None`, `[1, 2]`); the same spelling is accepted
 * back. Throws with a message naming the parameter when the text does not fit its type.
 */
export function parseParameter(name: string, text: string, type: string): unknown {
  const t = text.trim();
  const kind = (type || '').toLowerCase();
  const fail = (what: string): never => {
    throw new Error(`parameter ${name}: ${JSON.stringify(text)} is not ${what}`);
  };
  if (kind === 'str') {
    return unquote(t) ?? text;
  }
  if (kind === 'int') {
    return /^[-+]?\d+$/.test(t) ? parseInt(t, 10) : fail('an integer');
  }
  if (kind === 'float') {
    const v = Number(t);
    return t !== '' && isFinite(v) ? v : fail('a number');
  }
  if (kind === 'bool') {
    const low = t.toLowerCase();
    return low === 'true' ? true : low === 'false' ? false : fail('True or False');
  }
  if (t === 'None') {
    return null;
  }
  const quoted = unquote(t);
  if (quoted !== undefined) {
    return quoted;
  }
  try {
    return JSON.parse(pythonToJson(t));
  } catch {
    // an expression papermill could not type (`None`-typed, a call, …): pass it as text
    return text;
  }
}

/** `'x'` or `"x"` → `x`; undefined when `t` is not one quoted string. */
function unquote(t: string): string | undefined {
  const m = /^(['"])(.*)\1$/s.exec(t);
  if (!m || m[2].includes(m[1])) {
    return undefined;
  }
  return m[2].replace(/\\(.)/g, '$1');
}

/** Python literal spelling → JSON for the common cases (lists, dicts, True/False/None). */
function pythonToJson(t: string): string {
  return t
    .replace(/'([^'\\]*)'/g, (_m, s: string) => JSON.stringify(s))
    .replace(/\bTrue\b/g, 'true')
    .replace(/\bFalse\b/g, 'false')
    .replace(/\bNone\b/g, 'null')
    .replace(/,\s*([\]}])/g, '$1');
}

/**
 * The parameters the user changed from the notebook's defaults, parsed. Unchanged ones are
 * left to the notebook, so an expression default stays an expression.
 */
export function changedParameters(
  params: Parameter[],
  values: Record<string, string>
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of params) {
    const v = values[p.name];
    if (v === undefined || v.trim() === String(p.default ?? '').trim()) {
      continue;
    }
    out[p.name] = parseParameter(p.name, v, p.inferred_type_name);
  }
  return out;
}

/** `train.ipynb` at 2024-05-01 13:45 → `train 2024-05-01 13:45`. */
export function defaultJobName(path: string, now: Date): string {
  const base = path.split('/').pop() || 'notebook';
  const stem = base.replace(/\.ipynb$/i, '');
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ` +
    `${pad(now.getHours())}:${pad(now.getMinutes())}`;
  return `${stem} ${stamp}`;
}

/** Bytes as `512 B`, `1.5 kB`, `12.0 MB`. */
export function formatBytes(n: number): string {
  if (!isFinite(n) || n < 0) {
    return '—';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Artifact stages in promotion order (the artifacts service decides what is allowed). */
export const STAGES = ['candidate', 'staging', 'production', 'archived'] as const;

/** The stage a "Promote" moves an artifact to; null past production (archiving is not a
 * promotion). */
export function nextStage(stage: string): string | null {
  const i = STAGES.indexOf(stage as (typeof STAGES)[number]);
  return i >= 0 && i < STAGES.indexOf('production') ? STAGES[i + 1] : null;
}
