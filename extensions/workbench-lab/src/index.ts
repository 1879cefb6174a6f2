/**
 * Workbench in JupyterLab: "Run as job" (notebook toolbar and command palette), the Jobs side
 * panel, and the request's status-bar item.
 */
import {
  ILabShell,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';

import * as api from './api';
import { RunJobBody } from './dialog';
import { changedParameters, defaultJobName, type Job, type Parameter } from './logic';
import { JobsPanel } from './panel';
import { RequestStatus } from './status';

export const CommandIDs = {
  runAsJob: 'workbench-lab:run-as-job',
  openJobs: 'workbench-lab:open-jobs'
};

const jobIcon = new LabIcon({
  name: 'workbench-lab:job',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M4 4h16v2H4zm0 14h16v2H4zM6 8h2v8H6zm4 ' +
    '0 8 4-8 4z"/></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'workbench-lab:plugin',
  description: 'Run notebooks as workbench jobs and follow them.',
  autoStart: true,
  optional: [ICommandPalette, IDocumentManager, IStatusBar, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    docManager: IDocumentManager | null,
    statusBar: IStatusBar | null,
    labShell: ILabShell | null
  ) => {
    const panel = new JobsPanel({
      open: path => app.commands.execute('docmanager:open', { path })
    });
    panel.title.icon = jobIcon;
    app.shell.add(panel, 'left', { rank: 650 });

    const currentNotebook = () => {
      const widget = app.shell.currentWidget;
      const context = widget && docManager?.contextForWidget(widget);
      return context && context.path.endsWith('.ipynb') ? context : null;
    };
    const pathOf = (args: { path?: unknown }) =>
      typeof args.path === 'string' ? args.path : (currentNotebook()?.path ?? null);

    app.commands.addCommand(CommandIDs.runAsJob, {
      label: 'Run as job',
      caption: 'Run this notebook as a long-running job under the access request',
      icon: jobIcon,
      isEnabled: args => pathOf(args) !== null,
      execute: async args => {
        const path = pathOf(args);
        if (path === null) {
          return;
        }
        const job = await runAsJob(path, () => currentNotebook());
        if (job) {
          if (labShell) {
            labShell.activateById(panel.id);
          } else {
            app.shell.activateById(panel.id);
          }
          await panel.select(job.id);
        }
      }
    });
    app.commands.addCommand(CommandIDs.openJobs, {
      label: 'Show workbench jobs',
      execute: () => app.shell.activateById(panel.id)
    });
    if (palette) {
      palette.addItem({ command: CommandIDs.runAsJob, category: 'Workbench' });
      palette.addItem({ command: CommandIDs.openJobs, category: 'Workbench' });
    }

    if (statusBar) {
      statusBar.registerStatusItem('workbench-lab:request', {
        item: new RequestStatus(),
        align: 'left',
        rank: 100
      });
    }
  }
};

interface Saveable {
  path: string;
  model: { dirty: boolean };
  save(): Promise<void>;
}

/**
 * Asks for a name, profile and parameters, then submits `path` (saved first, so the job runs
 * what is on screen). Shows the dialog again, keeping what was typed, when a value is refused.
 */
async function runAsJob(path: string, context: () => Saveable | null): Promise<Job | null> {
  let ctx;
  let params: Parameter[];
  try {
    [ctx, params] = await Promise.all([api.getContext(), api.getParameters(path)]);
  } catch (error) {
    await showErrorMessage('Run as job', error as Error);
    return null;
  }
  let name = defaultJobName(path, new Date());
  let values: Record<string, string> | undefined;
  for (;;) {
    const result = await showDialog({
      title: `Run ${path.split('/').pop()} as a job`,
      body: new RunJobBody({
        name,
        profiles: [ctx.profile],
        profile: ctx.profile,
        parameters: params,
        values,
        note: `Runs under request #${ctx.request_id} for ${ctx.tenant} (${ctx.datasets.join(', ')}).`
      }),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit' })]
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    name = result.value.name;
    values = result.value.values;
    let parameters: Record<string, unknown>;
    try {
      if (!name) {
        throw new Error('Give the job a name.');
      }
      parameters = changedParameters(params, values);
    } catch (error) {
      await showErrorMessage('Run as job', error as Error);
      continue;
    }
    try {
      const open = context();
      if (open && open.path === path && open.model.dirty) {
        await open.save();
      }
      const job = await api.submitJob({ path, name, parameters, profile: result.value.profile });
      Notification.success(`Job "${job.name}" (#${job.id}) is ${job.state}.`, {
        autoClose: 4000
      });
      return job;
    } catch (error) {
      await showErrorMessage('The job was not submitted', error as Error);
    }
  }
}

export default plugin;
