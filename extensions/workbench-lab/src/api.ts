/**
 * Calls to the server extension under `/workbench-lab/`, which forwards them to the workbench
 * service with the server's token. Errors carry the service's own message.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { Artifact, Job, Metric, Parameter, RequestContext } from './logic';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'workbench-lab', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(`the notebook server did not answer: ${error}`, 0);
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    const message = data?.error ?? data?.message ?? response.statusText;
    throw new ApiError(String(message), response.status);
  }
  return data as T;
}

function post<T>(path: string, body: unknown = {}): Promise<T> {
  return call<T>(path, { method: 'POST', body: JSON.stringify(body) });
}

export function getContext(): Promise<RequestContext> {
  return call('context');
}

export async function getParameters(path: string): Promise<Parameter[]> {
  const data = await call<{ parameters: Parameter[] }>(
    `parameters?path=${encodeURIComponent(path)}`
  );
  return data.parameters;
}

export interface NewJob {
  path: string;
  name: string;
  parameters: Record<string, unknown>;
  profile?: string;
}

export function submitJob(job: NewJob): Promise<Job> {
  return post('jobs', job);
}

export async function listJobs(): Promise<Job[]> {
  return (await call<{ jobs: Job[] }>('jobs')).jobs;
}

export function getJob(id: number): Promise<Job> {
  return call(`jobs/${id}`);
}

export async function getLogs(id: number, tail = 20000): Promise<string> {
  return (await call<{ logs: string }>(`jobs/${id}/logs?tail=${tail}`)).logs;
}

/** Most metrics one `GET jobs/{id}/metrics` returns (the service's page). */
export const METRICS_PAGE = 5000;

/** Every metric after `after`, in as many pages as it takes (a fast job logs thousands
 * between two polls, and its last fetch must not stop at the first page). */
export async function getMetrics(id: number, after: number): Promise<Metric[]> {
  const all: Metric[] = [];
  for (;;) {
    const page = (await call<{ metrics: Metric[] }>(`jobs/${id}/metrics?after=${after}`))
      .metrics;
    all.push(...page);
    if (page.length < METRICS_PAGE) {
      return all;
    }
    after = page[page.length - 1].id;
  }
}

export function cancelJob(id: number): Promise<Job> {
  return post(`jobs/${id}/cancel`);
}

export function rerunJob(id: number): Promise<Job> {
  return post(`jobs/${id}/rerun`);
}

/** Saves the executed notebook under the server's root; answers its path there. */
export async function openResult(id: number): Promise<string> {
  return (await post<{ path: string }>(`jobs/${id}/open`)).path;
}

export async function listArtifacts(jobId: number): Promise<Artifact[]> {
  return (await call<{ artifacts: Artifact[] }>(`artifacts?job_id=${jobId}`)).artifacts;
}

export function promoteArtifact(id: number, stage: string): Promise<Artifact> {
  return post(`artifacts/${id}/promote`, { stage });
}
