/** The "Run as job" dialog: a job name, a profile, and the notebook's parameters. */
import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import type { Parameter } from './logic';

export interface RunJobValue {
  name: string;
  profile: string;
  /** Each parameter's text as typed (Python spelling); `changedParameters` parses them. */
  values: Record<string, string>;
}

/** The dialog's body; `values` pre-fills the parameters (when the dialog is shown again after
 * a value was refused), else they show the notebook's defaults. */
export class RunJobBody extends Widget implements Dialog.IBodyWidget<RunJobValue> {
  constructor(options: {
    name: string;
    profiles: string[];
    profile: string;
    parameters: Parameter[];
    values?: Record<string, string>;
    note?: string;
  }) {
    super();
    this.addClass('wb-run-dialog');
    this.params = options.parameters;
    const form = document.createElement('form');
    form.onsubmit = e => e.preventDefault();

    this.nameInput = this.field(form, 'Job name', 'wb-run-name', 'input');
    this.nameInput.value = options.name;
    this.nameInput.required = true;

    this.profileSelect = this.field(form, 'Profile', 'wb-run-profile', 'select');
    for (const p of options.profiles) {
      const opt = document.createElement('option');
      opt.value = opt.textContent = p;
      opt.selected = p === options.profile;
      this.profileSelect.appendChild(opt);
    }

    const fieldset = document.createElement('fieldset');
    fieldset.className = 'wb-run-params';
    const legend = document.createElement('legend');
    legend.textContent = 'Parameters';
    fieldset.appendChild(legend);
    if (!this.params.length) {
      const none = document.createElement('p');
      none.className = 'wb-run-no-params';
      none.textContent =
        'This notebook has no cell tagged "parameters"; it runs as it is.';
      fieldset.appendChild(none);
    }
    for (const p of this.params) {
      const input = this.field(fieldset, p.name, `wb-run-param-${p.name}`, 'input');
      input.classList.add('wb-run-param');
      input.dataset.param = p.name;
      input.dataset.type = p.inferred_type_name;
      input.value = options.values?.[p.name] ?? String(p.default ?? '');
      input.title = [p.inferred_type_name, p.help].filter(Boolean).join(' — ');
      this.inputs.set(p.name, input);
    }
    form.appendChild(fieldset);

    if (options.note) {
      const note = document.createElement('p');
      note.className = 'wb-run-note';
      note.textContent = options.note;
      form.appendChild(note);
    }
    this.node.appendChild(form);
  }

  getValue(): RunJobValue {
    const values: Record<string, string> = {};
    for (const [k, input] of this.inputs) {
      values[k] = input.value;
    }
    return { name: this.nameInput.value.trim(), profile: this.profileSelect.value, values };
  }

  private field<K extends 'input' | 'select'>(
    parent: HTMLElement,
    label: string,
    id: string,
    tag: K
  ): HTMLElementTagNameMap[K] {
    const row = document.createElement('label');
    row.className = 'wb-run-field';
    const span = document.createElement('span');
    span.textContent = label;
    const control = document.createElement(tag);
    control.id = id;
    control.className = 'jp-mod-styled';
    row.append(span, control);
    parent.appendChild(row);
    return control;
  }

  private readonly params: Parameter[];
  private readonly inputs = new Map<string, HTMLInputElement>();
  private readonly nameInput: HTMLInputElement;
  private readonly profileSelect: HTMLSelectElement;
}
