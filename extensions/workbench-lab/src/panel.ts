/**
 * The Jobs side panel: my jobs under this server's request, and for the selected one its live
 * log tail, metric plot, actions and artifacts. Polls while it is visible.
 */
import { Widget } from '@lumino/widgets';

import * as api from './api';
import {
  addMetrics,
  elapsedSeconds,
  formatBytes,
  formatDuration,
  formatHours,
  isEnded,
  nextStage,
  type Artifact,
  type Job,
  type Series
} from './logic';
import { renderPlot } from './plot';

/** Poll period for a running job's log and metrics, and for the list while any job is active. */
export const POLL_MS = 2000;
/** Poll period for the list when every job has ended. */
const IDLE_POLL_MS = 10000;

export interface JobsPanelOptions {
  /** Opens a notebook by its path under the server's root (the docmanager's `open`). */
  open: (path: string) => unknown;
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

export class JobsPanel extends Widget {
  constructor(private readonly options: JobsPanelOptions) {
    super();
    this.id = 'wb-jobs-panel';
    this.addClass('wb-JobsPanel');
    this.title.caption = 'Workbench jobs';

    const header = h('div', 'wb-jobs-header');
    header.appendChild(h('h2', '', 'Jobs'));
    const refresh = h('button', 'wb-jobs-refresh jp-Button', 'Refresh');
    refresh.onclick = () => void this.refresh();
    header.appendChild(refresh);
    this.node.appendChild(header);

    this.errorNode = h('div', 'wb-error');
    this.errorNode.hidden = true;
    this.node.appendChild(this.errorNode);

    this.listNode = h('ul', 'wb-job-list');
    this.node.appendChild(this.listNode);
    this.emptyNode = h('div', 'wb-jobs-empty', 'No jobs yet. Use "Run as job" on a notebook.');
    this.node.appendChild(this.emptyNode);

    this.detailNode = h('div', 'wb-job-detail');
    this.detailNode.hidden = true;
    this.node.appendChild(this.detailNode);
  }

  /** The selected job's id, or null. */
  get selected(): number | null {
    return this.selectedId;
  }

  /** Shows job `id` (after a submit or a re-run, say) and polls it. */
  async select(id: number | null): Promise<void> {
    this.selectedId = id;
    this.series = new Map();
    this.seenMetrics = new Set();
    this.lastMetric = 0;
    this.logs = '';
    this.artifacts = [];
    this.finalised = false;
    this.showError('action', null);
    this.detailNode.replaceChildren();
    this.detailNode.hidden = id === null;
    this.renderList();
    if (id !== null) {
      await this.refresh();
    }
  }

  /** Fetches the list and the selected job's logs, metrics and artifacts, then redraws. */
  async refresh(): Promise<void> {
    if (this.busy) {
      this.again = true; // a newer refresh was asked for: run it once this one is done
      return;
    }
    this.busy = true;
    try {
      this.jobs = await api.listJobs();
      this.fetchedAt = Date.now();
      const job = this.current();
      if (job && this.selectedId !== null && !this.finalised) {
        await this.fetchDetail(job);
      } else if (this.selectedId !== null && !job) {
        // not in the list (another request's job): ask for it directly
        const single = await api.getJob(this.selectedId);
        this.jobs = [single, ...this.jobs];
        this.fetchedAt = Date.now();
        await this.fetchDetail(single);
      }
      this.showError('poll', null);
    } catch (error) {
      this.showError('poll', String((error as Error).message ?? error));
    } finally {
      this.busy = false;
    }
    this.renderList();
    this.renderDetail();
    if (this.again) {
      this.again = false;
      await this.refresh();
    }
    // a job that became active (just submitted, say) is polled at once, not after the
    // idle wait: a short job could otherwise end before its first poll
    if (this.idleTimer && this.jobs.some(j => !isEnded(j.state))) {
      this.schedule(POLL_MS);
    }
  }

  protected onAfterShow(): void {
    this.schedule(0);
  }

  protected onAfterAttach(): void {
    this.schedule(0);
  }

  protected onBeforeDetach(): void {
    this.stop();
  }

  dispose(): void {
    this.stop();
    super.dispose();
  }

  private current(): Job | undefined {
    return this.jobs.find(j => j.id === this.selectedId);
  }

  private async fetchDetail(job: Job): Promise<void> {
    const id = job.id;
    const ended = isEnded(job.state);
    const [logs, metrics, artifacts] = await Promise.all([
      api.getLogs(id),
      api.getMetrics(id, this.lastMetric),
      api.listArtifacts(id).catch(error => {
        // a workbench without the artifact registry answers 404: show none, not an error
        if (error instanceof api.ApiError && error.status === 404) {
          return null;
        }
        throw error;
      })
    ]);
    if (id !== this.selectedId) {
      return; // the user picked another job meanwhile
    }
    this.logs = logs;
    this.lastMetric = addMetrics(this.series, metrics, this.lastMetric, this.seenMetrics);
    this.artifacts = artifacts ?? [];
    this.noArtifacts = artifacts === null;
    // one last fetch after the job ended picks up its final lines; then stop polling it
    this.finalised = ended;
  }

  private schedule(ms: number): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    this.timer = window.setTimeout(() => void this.tick(), ms);
    this.idleTimer = ms >= IDLE_POLL_MS;
  }

  private stop(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    this.idleTimer = false;
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (this.isDisposed || !this.isAttached || !this.isVisible) {
      return; // onAfterShow starts it again
    }
    await this.refresh();
    const active = this.jobs.some(j => !isEnded(j.state));
    this.schedule(active ? POLL_MS : IDLE_POLL_MS);
  }

  /**
   * A button's refusal stays until the next action or another job is picked: a poll
   * that succeeds meanwhile must not wipe it. A failed poll shows until one succeeds.
   */
  private showError(kind: 'action' | 'poll', message: string | null): void {
    this.errors[kind] = message;
    const shown = this.errors.action ?? this.errors.poll;
    this.errorNode.hidden = shown === null;
    this.errorNode.textContent = shown ?? '';
  }

  private renderList(): void {
    const now = Date.now();
    this.emptyNode.hidden = this.jobs.length > 0;
    const items = this.jobs.map(job => {
      const li = h('li', 'wb-job');
      li.dataset.jobId = String(job.id);
      li.dataset.jobState = job.state;
      li.setAttribute('role', 'button');
      li.tabIndex = 0;
      if (job.id === this.selectedId) {
        li.classList.add('wb-mod-selected');
        li.setAttribute('aria-selected', 'true');
      }
      li.appendChild(h('span', 'wb-job-name', job.name || `job ${job.id}`));
      const state = h('span', `wb-job-state wb-state-${job.state}`, job.state);
      li.appendChild(state);
      const facts = h('span', 'wb-job-facts');
      facts.appendChild(
        h('span', 'wb-job-elapsed', formatDuration(elapsedSeconds(job, now, this.fetchedAt)))
      );
      facts.appendChild(
        h('span', 'wb-job-gpu-hours', `${formatHours(job.gpu_hours ?? 0)} GPU-h`)
      );
      li.appendChild(facts);
      li.onclick = () => void this.select(job.id === this.selectedId ? null : job.id);
      li.onkeydown = e => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          li.click();
        }
      };
      return li;
    });
    this.listNode.replaceChildren(...items);
  }

  private renderDetail(): void {
    const job = this.current();
    const d = this.detailNode;
    if (!job) {
      d.hidden = true;
      return;
    }
    d.hidden = false;
    d.dataset.jobId = String(job.id);
    d.dataset.jobState = job.state;
    const ended = isEnded(job.state);

    const logNode = d.querySelector<HTMLPreElement>('.wb-job-logs');
    const atBottom =
      !logNode || logNode.scrollTop + logNode.clientHeight >= logNode.scrollHeight - 4;

    const title = h('h3', 'wb-job-title', `${job.name} (#${job.id})`);
    const meta = h('div', 'wb-job-meta');
    const facts: [string, string][] = [
      ['State', job.state],
      ['Notebook', job.notebook_name],
      ['Profile', job.profile],
      ['Elapsed', formatDuration(elapsedSeconds(job, Date.now(), this.fetchedAt))],
      ['GPU-hours', formatHours(job.gpu_hours ?? 0)],
      ['CPU-hours', formatHours(job.cpu_hours ?? 0)]
    ];
    if (Object.keys(job.parameters ?? {}).length) {
      facts.push(['Parameters', JSON.stringify(job.parameters)]);
    }
    if (job.rerun_of) {
      facts.push(['Re-run of', `#${job.rerun_of}`]);
    }
    if (job.end_reason) {
      facts.push(['Ended', job.end_reason]);
    }
    const dl = h('dl');
    for (const [k, v] of facts) {
      dl.appendChild(h('dt', '', k));
      const dd = h('dd', `wb-fact-${k.toLowerCase().replace(/[^a-z]+/g, '-')}`, v);
      dl.appendChild(dd);
    }
    meta.appendChild(dl);
    if (job.error) {
      meta.appendChild(h('pre', 'wb-job-error', job.error));
    }

    const actions = h('div', 'wb-job-actions');
    const cancel = h('button', 'wb-job-cancel jp-Button', 'Cancel');
    cancel.disabled = ended;
    cancel.onclick = () => this.act(() => api.cancelJob(job.id));
    const rerun = h('button', 'wb-job-rerun jp-Button', 'Re-run');
    rerun.disabled = !ended;
    rerun.onclick = () =>
      this.act(async () => {
        const fresh = await api.rerunJob(job.id);
        await this.select(fresh.id);
      });
    const open = h('button', 'wb-job-open jp-Button', 'Open result');
    open.disabled = !ended;
    open.onclick = () =>
      this.act(async () => {
        const path = await api.openResult(job.id);
        await this.options.open(path);
      });
    actions.append(cancel, rerun, open);

    const logs = h('pre', 'wb-job-logs', this.logs || '(no output yet)');

    const artifacts = h('ul', 'wb-artifacts');
    for (const a of this.artifacts) {
      artifacts.appendChild(this.renderArtifact(a));
    }
    if (!this.artifacts.length) {
      const none = this.noArtifacts
        ? 'This workbench keeps no artifacts.'
        : 'None yet.';
      artifacts.appendChild(h('li', 'wb-artifacts-empty', none));
    }

    d.replaceChildren(
      title,
      meta,
      actions,
      h('h4', '', 'Metrics'),
      renderPlot(this.series),
      h('h4', '', 'Log'),
      logs,
      h('h4', '', 'Artifacts'),
      artifacts
    );
    if (atBottom) {
      logs.scrollTop = logs.scrollHeight;
    }
  }

  private renderArtifact(a: Artifact): HTMLLIElement {
    const li = h('li', 'wb-artifact');
    li.dataset.artifactId = String(a.id);
    li.dataset.stage = a.stage;
    li.appendChild(h('span', 'wb-artifact-name', a.name));
    li.appendChild(h('span', `wb-artifact-stage wb-stage-${a.stage}`, a.stage));
    li.appendChild(h('span', 'wb-artifact-size', formatBytes(a.size)));
    li.title = `sha256 ${a.sha256}`;
    const to = nextStage(a.stage);
    if (to) {
      const promote = h('button', 'wb-artifact-promote jp-Button', `Promote to ${to}`);
      promote.dataset.stage = to;
      promote.onclick = () => this.act(() => api.promoteArtifact(a.id, to));
      li.appendChild(promote);
    }
    return li;
  }

  /** Runs a button's action, shows its error, and refreshes. */
  private act(action: () => Promise<unknown>): void {
    void (async () => {
      try {
        await action();
        this.finalised = false;
        this.showError('action', null);
      } catch (error) {
        this.showError('action', String((error as Error).message ?? error));
        return;
      }
      await this.refresh();
    })();
  }

  private readonly errorNode: HTMLDivElement;
  private readonly errors: Record<'action' | 'poll', string | null> = {
    action: null,
    poll: null
  };
  private readonly listNode: HTMLUListElement;
  private readonly emptyNode: HTMLDivElement;
  private readonly detailNode: HTMLDivElement;
  private jobs: Job[] = [];
  private fetchedAt = 0;
  private selectedId: number | null = null;
  private series: Series = new Map();
  private seenMetrics = new Set<number>();
  private lastMetric = 0;
  private logs = '';
  private artifacts: Artifact[] = [];
  private noArtifacts = false;
  private finalised = false;
  private busy = false;
  private again = false;
  private timer: number | null = null;
  private idleTimer = false; // the pending poll is the idle one
}
