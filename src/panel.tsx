/**
 * The InfinStor sidebar: a SidePanel whose accordion sections are the
 * buckets, the time control, the browser, the diff, the labels and the
 * transforms.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import {
  addIcon,
  codeIcon,
  HTMLSelect,
  PanelWithToolbar,
  refreshIcon,
  SidePanel,
  tagIcon,
  ToolbarButton
} from '@jupyterlab/ui-components';
import { AccordionPanel, Widget } from '@lumino/widgets';
import * as React from 'react';

import { InfinstorActions } from './browse/actions';
import { BrowserWidget } from './browse/browser';
import {
  openOtherToolsDialog,
  openRunOtherToolsDialog
} from './browse/othertools';
import { BucketsWidget } from './sections/buckets';
import { DiffWidget } from './sections/diff';
import { infinstorIcon } from './icons';
import { createLabelWithDialog, LabelsWidget } from './sections/labels';
import { InfinstorModel } from './model';
import { TimeControlWidget } from './sections/timecontrol';
import { trans } from './i18n';
import { rerunOf } from './transforms/runform';
import { IRun } from './api/types';
import {
  afterRunFinished,
  openRunDialog,
  RunNotifications,
  showOutput
} from './transforms/actions';
import { TransformsWidget } from './transforms/section';
import { TransformsModel } from './transforms/model';
import { OnSignals } from './signals';

/** The id of the sidebar widget (layout restorer, activateById). */
export const SIDEBAR_ID = 'infinstor-sidebar';

/** The tracked-bucket picker in the panel's toolbar. */
class BucketPicker extends ReactWidget {
  constructor(private readonly _model: InfinstorModel) {
    super();
    this.addClass('jp-Infinstor-bucketPicker');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals signals={[model.bucketsChanged, model.stateChanged]}>
        {() => {
          const tracked = model.buckets.filter(b => b.tracked);
          const options = tracked.map(b => ({
            label: b.name,
            value: b.name
          }));
          if (model.bucket && !tracked.some(b => b.name === model.bucket)) {
            options.unshift({ label: model.bucket, value: model.bucket });
          }
          if (!model.bucket) {
            options.unshift({
              label: trans.__('Choose a bucket…'),
              value: ''
            });
          }
          return (
            <HTMLSelect
              aria-label={trans.__('Bucket')}
              title={trans.__('Tracked bucket to browse')}
              value={model.bucket ?? ''}
              onChange={e => model.setBucket(e.currentTarget.value || null)}
              options={options}
            />
          );
        }}
      </OnSignals>
    );
  }
}

function section(
  title: string,
  body: Widget,
  className: string
): PanelWithToolbar {
  const panel = new PanelWithToolbar();
  panel.title.label = title;
  panel.addClass('jp-Infinstor-section');
  panel.addClass(className);
  panel.addWidget(body);
  return panel;
}

export class InfinstorPanel extends SidePanel {
  constructor(options: InfinstorPanel.IOptions) {
    super({ translator: options.translator });
    const { model, actions, transforms } = options;
    this.model = model;
    this.actions = actions;
    this.transformsModel = transforms;
    this.id = SIDEBAR_ID;
    this.addClass('jp-Infinstor-panel');
    this.title.icon = infinstorIcon;
    this.title.caption = trans.__('S3 time travel (InfinStor)');

    const heading = new Widget({ node: document.createElement('h2') });
    heading.node.textContent = trans.__('S3 Time Travel');
    heading.addClass('jp-text-truncated');
    this.header.addWidget(heading);

    this.toolbar.addItem('bucket', new BucketPicker(model));
    this.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Refresh buckets, listing, timeline and labels'),
        onClick: () => void this.refreshAll()
      })
    );

    this.buckets = section(
      trans.__('Buckets'),
      new BucketsWidget(model, bucket => actions.syncBucket(bucket)),
      'jp-Infinstor-bucketsSection'
    );
    this.buckets.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Refresh the buckets and their sync status'),
        onClick: () => void model.refreshBuckets()
      })
    );

    this.time = section(
      trans.__('Time'),
      new TimeControlWidget(model),
      'jp-Infinstor-timeSection'
    );

    this.browser = section(
      trans.__('Browser'),
      new BrowserWidget(model, actions),
      'jp-Infinstor-browserSection'
    );
    this.browser.toolbar.addItem(
      'insert-code',
      new ToolbarButton({
        icon: codeIcon,
        tooltip: trans.__('Insert code that lists this folder at this time'),
        onClick: () => void actions.insertCode(actions.folderTarget())
      })
    );
    this.browser.toolbar.addItem(
      'label',
      new ToolbarButton({
        icon: tagIcon,
        tooltip: trans.__('Name this view (new label)'),
        onClick: () => void this.createLabel()
      })
    );
    this.browser.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Reload the listing'),
        onClick: () => void model.refresh()
      })
    );

    this.diff = section(
      trans.__('Diff'),
      new DiffWidget(model, actions),
      'jp-Infinstor-diffSection'
    );

    this.labels = section(
      trans.__('Labels'),
      new LabelsWidget(model, actions),
      'jp-Infinstor-labelsSection'
    );
    this.labels.toolbar.addItem(
      'new',
      new ToolbarButton({
        icon: addIcon,
        tooltip: trans.__('New label from the current view'),
        onClick: () => void this.createLabel()
      })
    );
    this.labels.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Reload the labels'),
        onClick: () => void model.refreshLabels()
      })
    );

    this.transforms = section(
      trans.__('Transforms'),
      new TransformsWidget(transforms, model, {
        runAgain: run => void this.runAgain(run),
        openOutput: run => this.showOutput(run),
        useFromOtherTools: run =>
          void openRunOtherToolsDialog(this.model.client, this.actions, run)
      }),
      'jp-Infinstor-transformsSection'
    );
    this.transforms.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: trans.__('Reload the transforms and their runs'),
        onClick: () => void transforms.refresh()
      })
    );
    transforms.runFinished.connect(this._onRunFinished, this);

    this.addWidget(this.buckets);
    this.addWidget(this.time);
    this.addWidget(this.browser);
    this.addWidget(this.diff);
    this.addWidget(this.labels);
    this.addWidget(this.transforms);

    const accordion = this.content as AccordionPanel;
    accordion.setRelativeSizes([2, 3, 8, 2, 2, 3]);
    // Diff, labels and transforms open when needed (their titles, or the
    // commands); a saved workspace restores the sections as the user left them.
    accordion.collapse(3);
    accordion.collapse(4);
    accordion.collapse(5);
  }

  readonly model: InfinstorModel;
  readonly actions: InfinstorActions;
  readonly buckets: PanelWithToolbar;
  readonly time: PanelWithToolbar;
  readonly browser: PanelWithToolbar;
  readonly diff: PanelWithToolbar;
  readonly labels: PanelWithToolbar;
  readonly transforms: PanelWithToolbar;
  readonly transformsModel: TransformsModel;

  /**
   * Expand a section (when collapsed) and bring it into view: a section that
   * opens too small to use (it was collapsed from the start) gets a third of
   * the panel, taken from the open sections in proportion to their sizes.
   */
  expand(widget: Widget): void {
    const accordion = this.content as AccordionPanel;
    const index = accordion.widgets.indexOf(widget);
    if (index < 0) {
      return;
    }
    if (widget.isHidden) {
      accordion.expand(index);
    }
    const share = 1 / 3;
    const sizes = accordion.relativeSizes();
    if (sizes[index] >= share / 2) {
      return;
    }
    const open = (i: number) => i !== index && !accordion.widgets[i].isHidden;
    const others = sizes.reduce(
      (sum, size, i) => (open(i) ? sum + size : sum),
      0
    );
    accordion.setRelativeSizes(
      sizes.map((size, i) =>
        i === index
          ? share
          : open(i) && others > 0
            ? (size * (1 - share)) / others
            : 0
      )
    );
  }

  /** Ask for a label of the current view; show it in the labels section. */
  async createLabel(): Promise<void> {
    const label = await createLabelWithDialog(this.model);
    if (label) {
      this.expand(this.labels);
    }
  }

  /** A credential and client snippets for the current view (the endpoint dialog). */
  async useFromOtherTools(): Promise<void> {
    await openOtherToolsDialog(this.model, this.actions);
  }

  async refreshAll(): Promise<void> {
    await Promise.all([
      this.model.refreshBuckets(),
      this.model.refresh(),
      this.model.refreshTimeline(),
      this.model.refreshLabels(),
      this.transformsModel.refresh()
    ]);
  }

  /** Open the transforms section on a run (highlighted). */
  revealRun(run: IRun | null): void {
    if (run) {
      this.transformsModel.highlight(run.id);
    }
    this.expand(this.transforms);
  }

  /**
   * Capture a cell's source as a transform and run it (the dialog); the run
   * shows in the transforms section.
   */
  async runCell(source: string): Promise<IRun | null> {
    const run = await openRunDialog({
      model: this.model,
      transforms: this.transformsModel,
      source
    });
    if (run) {
      this.revealRun(run);
      this._followRun(run);
    }
    return run;
  }

  /** Run a run's revision again with its settings, on an input the user picks. */
  async runAgain(run: IRun): Promise<IRun | null> {
    const entry = this.transformsModel.revision(run.transform, run.revision);
    const next = await openRunDialog({
      model: this.model,
      transforms: this.transformsModel,
      rerun: rerunOf(run, entry?.entry_point ?? null)
    });
    if (next) {
      this.revealRun(next);
      this._followRun(next);
    }
    return next;
  }

  /** Show a run's output folder in the browser section. */
  showOutput(run: IRun): void {
    if (showOutput(this.model, run)) {
      this.expand(this.browser);
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.transformsModel.runFinished.disconnect(this._onRunFinished, this);
    super.dispose();
  }

  private _showRun(run: IRun): void {
    this.revealRun(run);
    this.actions.app.shell.activateById(this.id);
  }

  private _followRun(run: IRun): void {
    this._runNotes.follow(run);
  }

  private _onRunFinished(_: TransformsModel, run: IRun): void {
    void afterRunFinished(this.model, run);
    this._runNotes.finished(run);
  }

  private _runNotes = new RunNotifications({
    showRun: run => this._showRun(run),
    openOutput: run => {
      this.showOutput(run);
      this.actions.app.shell.activateById(this.id);
    }
  });
}

export namespace InfinstorPanel {
  export interface IOptions {
    model: InfinstorModel;
    actions: InfinstorActions;
    transforms: TransformsModel;
    translator?: SidePanel.IOptions['translator'];
  }
}

export { infinstorIcon };
