import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  addMetrics,
  budget,
  changedParameters,
  defaultJobName,
  elapsedSeconds,
  formatBytes,
  formatDuration,
  formatHours,
  formatTick,
  nextStage,
  parseParameter,
  pathData,
  project,
  scaleFor,
  statusText,
  type Job,
  type Metric,
  type RequestContext,
  type Series
} from '../src/logic';

const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({
  request_id: 7,
  tenant: 'acme',
  datasets: ['calls'],
  profile: 'gpu-1',
  gpu_hours: 2,
  gpu_hours_used: 0.5,
  seconds_left: 3600,
  state: 'approved',
  request: {},
  ...over
});

const job = (over: Partial<Job> = {}): Job => ({
  id: 1,
  request_id: 7,
  user: 'alice',
  tenant: 'acme',
  name: 'train',
  state: 'running',
  profile: 'gpu-1',
  notebook_name: 'train.ipynb',
  parameters: {},
  created_at: '2024-05-01T10:00:00Z',
  started_at: '2024-05-01T10:00:00Z',
  ended_at: null,
  elapsed_seconds: null,
  gpu_hours: 0,
  cpu_hours: 0,
  end_reason: null,
  error: null,
  rerun_of: null,
  ...over
});

describe('budget', () => {
  it('is what is left of the GPU-hours', () => {
    const b = budget(2, 0.5);
    assert.equal(b.left, 1.5);
    assert.equal(b.fraction, 0.75);
    assert.equal(b.low, false);
  });

  it('is low under 10 % left, not at 10 %', () => {
    assert.equal(budget(10, 9.01).low, true);
    assert.equal(budget(10, 9).low, false);
  });

  it('never goes below zero', () => {
    const b = budget(1, 3);
    assert.equal(b.left, 0);
    assert.equal(b.fraction, 0);
    assert.equal(b.low, true);
  });

  it('is not low without a GPU budget', () => {
    const b = budget(0, 0);
    assert.equal(b.fraction, 1);
    assert.equal(b.low, false);
  });
});

describe('formatting', () => {
  it('formats durations', () => {
    assert.equal(formatDuration(null), '—');
    assert.equal(formatDuration(12.7), '12s');
    assert.equal(formatDuration(249), '4m 09s');
    assert.equal(formatDuration(2 * 3600 + 5 * 60), '2h 05m');
    assert.equal(formatDuration(3 * 86400 + 4 * 3600 + 59), '3d 4h');
    assert.equal(formatDuration(-5), '0s');
  });

  it('formats hours by size', () => {
    assert.equal(formatHours(0), '0');
    assert.equal(formatHours(0.0041), '0.004');
    assert.equal(formatHours(0.256), '0.26');
    assert.equal(formatHours(12.53), '12.5');
    assert.equal(formatHours(130.4), '130');
    assert.equal(formatHours(null), '—');
  });

  it('formats bytes and ticks', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1500), '1.5 kB');
    assert.equal(formatBytes(12_000_000), '12.0 MB');
    assert.equal(formatTick(0.001234), '0.00123');
    assert.equal(formatTick(3.5), '3.5');
    assert.equal(formatTick(250.4), '250');
    assert.equal(formatTick(12345), '12.3k');
    assert.equal(formatTick(4_000_000), '4.0M');
  });

  it('writes the status line', () => {
    assert.equal(statusText(ctx(), 3600), 'acme · 1h 00m left · GPU 1.5 of 2 h left');
    assert.equal(
      statusText(ctx({ gpu_hours: 0, gpu_hours_used: 0, profile: 'cpu-small' }), null),
      'acme · approved · no GPU'
    );
  });

  it('names a job after its notebook and the time', () => {
    const name = defaultJobName('work/train.ipynb', new Date(2024, 4, 1, 9, 5));
    assert.equal(name, 'train 2024-05-01 09:05');
  });
});

describe('elapsedSeconds', () => {
  const now = Date.parse('2024-05-01T10:01:30Z');

  it("takes the service's figure and counts on from the fetch while running", () => {
    const j = job({ elapsed_seconds: 60 });
    assert.equal(elapsedSeconds(j, now, now - 5000), 65);
    assert.equal(elapsedSeconds(j, now), 60);
  });

  it("does not count on for an ended job", () => {
    const j = job({ state: 'succeeded', elapsed_seconds: 42 });
    assert.equal(elapsedSeconds(j, now, now - 5000), 42);
  });

  it('counts from the start when the service gave no figure', () => {
    assert.equal(elapsedSeconds(job(), now), 90);
    const j = job({ state: 'failed', ended_at: '2024-05-01T10:00:30Z' });
    assert.equal(elapsedSeconds(j, now), 30);
  });

  it('is unknown for a queued job', () => {
    assert.equal(elapsedSeconds(job({ state: 'queued', started_at: null }), now), null);
  });
});

describe('metric series', () => {
  const m = (id: number, name: string, step: number, value: number): Metric => ({
    id,
    name,
    step,
    value
  });

  it('groups by name, sorted by step, and returns the last id', () => {
    const series: Series = new Map();
    const last = addMetrics(series, [m(1, 'loss', 2, 0.5), m(2, 'loss', 1, 0.9), m(3, 'acc', 1, 0.1)], 0);
    assert.equal(last, 3);
    assert.deepEqual([...series.keys()], ['loss', 'acc']);
    assert.deepEqual(series.get('loss'), [
      { x: 1, y: 0.9 },
      { x: 2, y: 0.5 }
    ]);
  });

  it('appends later polls and counts an overlapping metric once', () => {
    const series: Series = new Map();
    const seen = new Set<number>();
    let last = addMetrics(series, [m(1, 'loss', 1, 0.9)], 0, seen);
    last = addMetrics(series, [m(1, 'loss', 1, 0.9), m(2, 'loss', 2, 0.4)], last, seen);
    assert.equal(last, 2);
    assert.equal(series.get('loss')!.length, 2);
  });

  it('skips values that cannot be drawn but moves past them', () => {
    const series: Series = new Map();
    const last = addMetrics(series, [m(5, 'loss', 1, NaN)], 0);
    assert.equal(last, 5);
    assert.equal(series.size, 0);
  });
});

describe('plot scaling', () => {
  it('maps the domain onto the padded box, y upwards', () => {
    const series: Series = new Map([
      [
        'loss',
        [
          { x: 0, y: 0 },
          { x: 10, y: 2 }
        ]
      ]
    ]);
    const s = scaleFor(series, 120, 70, 10);
    assert.deepEqual(project({ x: 0, y: 0 }, s), { x: 10, y: 60 });
    assert.deepEqual(project({ x: 10, y: 2 }, s), { x: 110, y: 10 });
    assert.deepEqual(project({ x: 5, y: 1 }, s), { x: 60, y: 35 });
    assert.equal(pathData(series.get('loss')!, s), 'M10.0,60.0 L110.0,10.0');
  });

  it('widens a flat or single-point series so nothing divides by zero', () => {
    const series: Series = new Map([['acc', [{ x: 3, y: 5 }]]]);
    const s = scaleFor(series, 100, 100, 0);
    assert.equal(s.x1 - s.x0, 1);
    assert.ok(s.y1 > s.y0);
    const p = project({ x: 3, y: 5 }, s);
    assert.ok(isFinite(p.x) && isFinite(p.y));
    assert.equal(p.y, 50);
  });

  it('has a domain with no data at all', () => {
    const s = scaleFor(new Map(), 100, 100);
    assert.deepEqual([s.x0, s.x1, s.y0, s.y1], [0, 1, 0, 1]);
  });
});

describe('parameters', () => {
  it('reads values in the types papermill inferred', () => {
    assert.equal(parseParameter('epochs', '5', 'int'), 5);
    assert.equal(parseParameter('lr', '1e-3', 'float'), 0.001);
    assert.equal(parseParameter('cuda', 'True', 'bool'), true);
    assert.equal(parseParameter('cuda', 'false', 'bool'), false);
    assert.equal(parseParameter('opt', "'adam'", 'str'), 'adam');
    assert.equal(parseParameter('opt', 'sgd', 'str'), 'sgd');
    assert.equal(parseParameter('path', '"a b"', 'str'), 'a b');
  });

  it('reads Python literals of other types', () => {
    assert.equal(parseParameter('x', 'None', 'None'), null);
    assert.deepEqual(parseParameter('layers', '[64, 32,]', 'list'), [64, 32]);
    assert.deepEqual(parseParameter('cfg', "{'a': True, 'b': None}", 'dict'), {
      a: true,
      b: null
    });
    assert.equal(parseParameter('s', "'x'", 'None'), 'x');
    assert.equal(parseParameter('e', 'len(x)', ''), 'len(x)');
  });

  it('refuses a value that does not fit, naming the parameter', () => {
    assert.throws(() => parseParameter('epochs', '2.5', 'int'), /parameter epochs: "2.5" is not an integer/);
    assert.throws(() => parseParameter('lr', 'fast', 'float'), /parameter lr/);
    assert.throws(() => parseParameter('cuda', 'yes', 'bool'), /True or False/);
  });

  it('sends only what changed from the defaults', () => {
    const params = [
      { name: 'epochs', inferred_type_name: 'int', default: '5', help: '' },
      { name: 'lr', inferred_type_name: 'float', default: '0.01', help: '' },
      { name: 'opt', inferred_type_name: 'str', default: "'adam'", help: '' }
    ];
    assert.deepEqual(changedParameters(params, { epochs: '5', lr: '0.1', opt: " 'adam' " }), {
      lr: 0.1
    });
    assert.deepEqual(changedParameters(params, {}), {});
  });
});

describe('stages', () => {
  it('promotes one stage up to production, no further', () => {
    assert.equal(nextStage('candidate'), 'staging');
    assert.equal(nextStage('staging'), 'production');
    assert.equal(nextStage('production'), null);
    assert.equal(nextStage('archived'), null);
    assert.equal(nextStage('quarantined'), null);
  });
});
