/** The status-bar item: the request's tenant, time left and GPU-hours left of its budget. */
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { budget, statusText, type RequestContext } from './logic';

/** How often the request is fetched again; the time left counts down locally in between. */
const REFRESH_MS = 30000;

export class RequestStatus extends Widget {
  constructor() {
    super();
    this.id = 'wb-request-status';
    this.addClass('wb-RequestStatus');
    this.node.textContent = 'Workbench…';
    this.node.title = 'Workbench access request';
    void this.refresh();
    this.countdown = window.setInterval(() => this.render(), 1000);
  }

  /** The request as last fetched, or null before (or when the server has none). */
  get context(): RequestContext | null {
    return this.ctx;
  }

  async refresh(): Promise<void> {
    window.clearTimeout(this.timer);
    try {
      this.ctx = await api.getContext();
      this.fetchedAt = Date.now();
      this.error = null;
    } catch (error) {
      this.error = String((error as Error).message ?? error);
    }
    this.render();
    this.timer = window.setTimeout(() => void this.refresh(), REFRESH_MS);
  }

  dispose(): void {
    window.clearTimeout(this.timer);
    window.clearInterval(this.countdown);
    super.dispose();
  }

  private render(): void {
    const n = this.node;
    if (!this.ctx) {
      n.textContent = this.error ? 'Workbench: no request' : 'Workbench…';
      n.title = this.error ?? '';
      n.dataset.low = 'false';
      return;
    }
    const c = this.ctx;
    const left =
      c.seconds_left === null
        ? null
        : Math.max(0, c.seconds_left - (Date.now() - this.fetchedAt) / 1000);
    const b = budget(c.gpu_hours, c.gpu_hours_used);
    n.textContent = statusText(c, left);
    n.dataset.requestId = String(c.request_id);
    n.dataset.tenant = c.tenant;
    n.dataset.gpuHoursLeft = String(b.left);
    n.dataset.low = String(b.low);
    n.classList.toggle('wb-mod-low', b.low);
    n.title =
      `Request #${c.request_id} (${c.state}) for ${c.tenant}: ` +
      `${c.datasets.join(', ')} on ${c.profile}. ` +
      `GPU-hours used ${b.used} of ${b.total}.` +
      (this.error ? ` Last refresh failed: ${this.error}` : '');
  }

  private ctx: RequestContext | null = null;
  private fetchedAt = 0;
  private error: string | null = null;
  private timer = 0;
  private readonly countdown: number;
}
