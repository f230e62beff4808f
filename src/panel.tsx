/**
 * The InfinStor sidebar: a SidePanel whose accordion sections are the
 * buckets, the time control, the browser, the diff, the labels and the
 * transforms.
 */
import {
  MainAreaWidget,
  ReactWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
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
import {
  createCredentialsWidget,
  CredentialsContent,
  CredentialsModel
} from './browse/credentials';
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
import {
  createRunsWidget,
  TransformRunsContent,
  TransformsWidget
} from './transforms/section';
import { TransformsModel } from './transforms/model';
import { OnSignals } from './signals';
import { PipelinesModel } from './pipelines/model';
import { PipelineNotifications } from './pipelines/notifications';
import { createPipelinesWidget, PipelinesContent } from './pipelines/tab';
import { SchedulesModel } from './schedules/model';
import { createSchedulesWidget, SchedulesContent } from './schedules/tab';
import { IPipelineRun } from './api/types';

/** The least height of an open section whose height follows its content. */
const FITTED_MIN = 48;
/** The browser's least height: ten rows below its chrome (as base.css says). */
const BROWSER_MIN = 370;
/** The height of a browser row. */
const BROWSER_ROW = 24;

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
    this._runsTracker = options.runsTracker ?? null;
    this._pipelinesTracker = options.pipelinesTracker ?? null;
    this._schedulesTracker = options.schedulesTracker ?? null;
    this.pipelinesModel =
      options.pipelines ?? new PipelinesModel({ client: model.client });
    this.schedulesModel =
      options.schedules ?? new SchedulesModel({ client: model.client });
    this.model = model;
    this.actions = actions;
    this.transformsModel = transforms;
    this.credentialsModel = new CredentialsModel(model.client);
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
      new BucketsWidget(
        model,
        bucket => actions.syncBucket(bucket),
        (bucket, options) => actions.trackBucket(bucket, options)
      ),
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
      new TransformsWidget(transforms, model, run => this.revealRun(run), {
        openPipelines: () => void this.openPipelines(),
        openSchedules: () => void this.openSchedules()
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
    this.pipelinesModel.runFinished.connect(this._onPipelineRunFinished, this);

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

    // The sections' heights follow their content; the browser gets the rest.
    accordion.expansionToggled.connect(this._scheduleFit, this);
    model.listingChanged.connect(this._scheduleFit, this);
    if (typeof ResizeObserver !== 'undefined') {
      this._resizeObserver = new ResizeObserver(() => this._scheduleFit());
      this._resizeObserver.observe(this.node);
      this._contentObserver = new MutationObserver(() =>
        this._observeContent()
      );
      for (const section of this._fitted) {
        this._contentObserver.observe(section.widgets[0].node, {
          childList: true
        });
      }
      this._observeContent();
    }
  }

  /** The sections whose height is their content's (all but the browser). */
  private get _fitted(): PanelWithToolbar[] {
    return [this.buckets, this.time, this.diff, this.labels, this.transforms];
  }

  /** Watch the size of each fitted section's content (React may swap its root). */
  private _observeContent(): void {
    const observer = this._resizeObserver;
    if (!observer) {
      return;
    }
    for (const section of this._fitted) {
      for (const child of Array.from(section.widgets[0].node.children)) {
        if (!this._observed.has(child)) {
          this._observed.add(child);
          observer.observe(child);
        }
      }
    }
    this._scheduleFit();
  }

  private _scheduleFit(): void {
    if (this._fitFrame || this.isDisposed) {
      return;
    }
    // Once more after React has drawn what changed (a new listing).
    window.clearTimeout(this._fitTimer);
    this._fitTimer = window.setTimeout(() => this._scheduleFit(), 100);
    this._fitFrame = requestAnimationFrame(() => {
      this._fitFrame = 0;
      this.fitSections();
    });
  }

  /**
   * Give each open section but the browser the height of its content (so it
   * neither scrolls nor keeps empty space), and the browser the rest. When the
   * contents do not all fit above the browser's minimum (ten rows), the
   * tallest are capped to a shared height and scroll inside.
   */
  fitSections(): void {
    const accordion = this.content as AccordionPanel;
    // The room the sidebar gives the accordion (not the accordion's own
    // height, which grows with the min-heights set here).
    const total = Math.floor(
      this.node.getBoundingClientRect().bottom -
        accordion.node.getBoundingClientRect().top
    );
    if (!this.isVisible || total <= 0) {
      return;
    }
    const titles = accordion.titles.reduce(
      (sum, title) => sum + title.offsetHeight,
      0
    );
    // The browser keeps room for ten rows; a shorter listing needs only its
    // own height, and the sections above get the rest of the room.
    let browserMin = BROWSER_MIN;
    const list = this.browser.node.querySelector(
      '.jp-Infinstor-virtualList'
    ) as HTMLElement | null;
    const rows = list?.querySelector(
      '.jp-Infinstor-virtualList-content'
    ) as HTMLElement | null;
    const root = list?.parentElement ?? null;
    if (list && rows && root) {
      // Its chrome (breadcrumbs, as-of line, filter, header, status) from
      // the parts themselves: the section may be squeezed below them.
      let chrome = 0;
      for (const child of Array.from(root.children) as HTMLElement[]) {
        if (child !== list) {
          const cs = getComputedStyle(child);
          chrome +=
            child.offsetHeight +
            parseFloat(cs.marginTop || '0') +
            parseFloat(cs.marginBottom || '0');
        }
      }
      const needed = chrome + Math.max(rows.offsetHeight, 2 * BROWSER_ROW);
      browserMin = Math.min(BROWSER_MIN, Math.ceil(needed));
    }
    const browserHeight = `${browserMin}px`;
    if (this.browser.node.style.minHeight !== browserHeight) {
      this.browser.node.style.minHeight = browserHeight;
    }
    const open = this._fitted.filter(s => !s.isHidden);
    const natural = open.map(section => {
      const body = section.widgets[0].node;
      const style = getComputedStyle(body);
      let height =
        parseFloat(style.paddingTop || '0') +
        parseFloat(style.paddingBottom || '0');
      for (const child of Array.from(body.children) as HTMLElement[]) {
        const cs = getComputedStyle(child);
        if (cs.position === 'absolute' || cs.position === 'fixed') {
          continue;
        }
        height +=
          child.offsetHeight +
          parseFloat(cs.marginTop || '0') +
          parseFloat(cs.marginBottom || '0');
      }
      return Math.ceil(height);
    });
    // The time control comes first (it is small and always needed): all of
    // it, leaving the others their least height. The others share the rest
    // (water-filling: the largest cap at which they fit above the browser).
    let room = Math.max(0, total - titles - browserMin - 1);
    const heights = natural.slice();
    const timeIndex = open.indexOf(this.time);
    const rest = open.map((_, i) => i).filter(i => i !== timeIndex);
    if (timeIndex >= 0) {
      heights[timeIndex] = Math.max(
        FITTED_MIN,
        Math.min(natural[timeIndex], room - FITTED_MIN * rest.length)
      );
      room -= heights[timeIndex];
    }
    const shared = rest.map(i => natural[i]);
    const sum = (cap: number) =>
      shared.reduce((acc, h) => acc + Math.min(h, cap), 0);
    let cap = Math.max(0, ...shared);
    if (sum(cap) > room) {
      const sorted = [...shared].sort((a, b) => a - b);
      let used = 0;
      cap = 0;
      for (let i = 0; i < sorted.length; i++) {
        const even = (room - used) / (sorted.length - i);
        if (sorted[i] > even) {
          cap = Math.floor(even);
          break;
        }
        used += sorted[i];
      }
    }
    for (const i of rest) {
      heights[i] = Math.min(natural[i], cap);
    }
    let changed = this._browserMin !== browserMin;
    this._browserMin = browserMin;
    open.forEach((section, i) => {
      const height = `${Math.max(FITTED_MIN, heights[i])}px`;
      const style = section.node.style;
      if (style.minHeight !== height || style.maxHeight !== height) {
        style.minHeight = height;
        style.maxHeight = height;
        changed = true;
      }
    });
    for (const section of this._fitted) {
      if (section.isHidden && section.node.style.maxHeight) {
        section.node.style.minHeight = '';
        section.node.style.maxHeight = '';
        changed = true;
      }
    }
    if (changed) {
      accordion.fit();
    }
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
  readonly credentialsModel: CredentialsModel;
  readonly pipelinesModel: PipelinesModel;
  readonly schedulesModel: SchedulesModel;

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
    const cred = await openOtherToolsDialog(this.model, this.actions);
    this._credentialIssued(cred);
  }

  /**
   * Open the *View Credentials* main-area panel (every view credential of the
   * endpoint; revoke one): one panel, listed again when it is brought forward.
   */
  openCredentials(): MainAreaWidget<CredentialsContent> {
    let widget = this._credentialsPanel;
    if (!widget || widget.isDisposed) {
      widget = createCredentialsWidget(this.credentialsModel, this.model);
      this._credentialsPanel = widget;
      widget.disposed.connect(() => {
        if (this._credentialsPanel === widget) {
          this._credentialsPanel = null;
        }
      });
    }
    if (!widget.isAttached) {
      this.actions.app.shell.add(widget, 'main');
    }
    this.actions.app.shell.activateById(widget.id);
    void this.credentialsModel.refresh();
    return widget;
  }

  /** A credential was issued: an open *View Credentials* panel lists it. */
  private _credentialIssued(cred: unknown): void {
    if (cred && this._credentialsPanel && !this._credentialsPanel.isDisposed) {
      void this.credentialsModel.refresh();
    }
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

  /**
   * Open the *Transform Runs* main-area panel (on a run, highlighted): one
   * panel, brought forward when it is open already.
   */
  openRuns(run: IRun | null = null): MainAreaWidget<TransformRunsContent> {
    if (run) {
      this.transformsModel.highlight(run.id);
    }
    let widget = this._runsPanel;
    if (!widget || widget.isDisposed) {
      widget = createRunsWidget(this.transformsModel, this.model, {
        runAgain: r => void this.runAgain(r),
        openOutput: r => {
          this.showOutput(r);
          this.actions.app.shell.activateById(this.id);
        },
        useFromOtherTools: r =>
          void openRunOtherToolsDialog(this.model.client, this.actions, r).then(
            cred => this._credentialIssued(cred)
          )
      });
      this._runsPanel = widget;
      widget.disposed.connect(() => {
        if (this._runsPanel === widget) {
          this._runsPanel = null;
        }
      });
      if (this._runsTracker) {
        void this._runsTracker.add(widget);
      }
    }
    if (!widget.isAttached) {
      this.actions.app.shell.add(widget, 'main');
    }
    this.actions.app.shell.activateById(widget.id);
    return widget;
  }

  /**
   * Open the *Pipelines* main-area panel (on a pipeline's runs): one panel,
   * brought forward when it is open already.
   */
  openPipelines(
    pipeline: string | null = null
  ): MainAreaWidget<PipelinesContent> {
    if (pipeline) {
      void this.pipelinesModel.select(pipeline);
    }
    let widget = this._pipelinesPanel;
    if (!widget || widget.isDisposed) {
      widget = createPipelinesWidget(
        this.pipelinesModel,
        this.transformsModel,
        this.model,
        {
          openOutput: uri => this._openUri(uri),
          useLabel: label => {
            this.model.useLabel(label);
            this.actions.app.shell.activateById(this.id);
          },
          followRun: run => this._pipelineNotes.follow(run)
        }
      );
      this._pipelinesPanel = widget;
      widget.disposed.connect(() => {
        if (this._pipelinesPanel === widget) {
          this._pipelinesPanel = null;
        }
      });
      if (this._pipelinesTracker) {
        void this._pipelinesTracker.add(widget);
      }
    }
    if (!widget.isAttached) {
      this.actions.app.shell.add(widget, 'main');
    }
    this.actions.app.shell.activateById(widget.id);
    return widget;
  }

  /** Open the *Schedules* main-area panel (one panel, reused). */
  openSchedules(): MainAreaWidget<SchedulesContent> {
    let widget = this._schedulesPanel;
    if (!widget || widget.isDisposed) {
      widget = createSchedulesWidget(
        this.schedulesModel,
        this.transformsModel,
        this.model,
        {
          showRun: id => void this._showRunById(id),
          followRuns: ids => void this._followRunIds(ids)
        }
      );
      this._schedulesPanel = widget;
      widget.disposed.connect(() => {
        if (this._schedulesPanel === widget) {
          this._schedulesPanel = null;
        }
      });
      if (this._schedulesTracker) {
        void this._schedulesTracker.add(widget);
      }
    }
    if (!widget.isAttached) {
      this.actions.app.shell.add(widget, 'main');
    }
    this.actions.app.shell.activateById(widget.id);
    return widget;
  }

  /** Show a run (or the runs) in the *Transform Runs* panel. */
  revealRun(run: IRun | null): void {
    this.openRuns(run);
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
    this.pipelinesModel.runFinished.disconnect(
      this._onPipelineRunFinished,
      this
    );
    this.model.listingChanged.disconnect(this._scheduleFit, this);
    this._resizeObserver?.disconnect();
    this._contentObserver?.disconnect();
    cancelAnimationFrame(this._fitFrame);
    window.clearTimeout(this._fitTimer);
    super.dispose();
  }

  private _showRun(run: IRun): void {
    this.revealRun(run);
  }

  private _followRun(run: IRun): void {
    this._runNotes.follow(run);
  }

  private _onRunFinished(_: TransformsModel, run: IRun): void {
    void afterRunFinished(this.model, run);
    this._runNotes.finished(run);
  }

  private _onPipelineRunFinished(_: PipelinesModel, run: IPipelineRun): void {
    this._pipelineNotes.finished(run);
    // Step outputs were indexed and labelled.
    void this.model.refreshBuckets();
    void this.model.refreshLabels();
  }

  /** Show an S3 folder (`s3://bucket/prefix/`) in the browser section. */
  private _openUri(uri: string): void {
    if (showOutput(this.model, { output_uri: uri })) {
      this.expand(this.browser);
    }
    this.actions.app.shell.activateById(this.id);
  }

  /** Open a transform run (by id) in the *Transform Runs* panel. */
  private async _showRunById(id: string): Promise<void> {
    await this.transformsModel.refreshRuns();
    const run = this.transformsModel.runs.find(r => r.id === id) ?? null;
    if (run) {
      this.revealRun(run);
      return;
    }
    try {
      const fetched = await this.model.client.getRun(id);
      this.transformsModel.track(fetched);
      this.revealRun(fetched);
    } catch {
      this.revealRun(null);
    }
  }

  /** Runs fired from the UI (a schedule's "Run now"): notifications until they end. */
  private async _followRunIds(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        const run = await this.model.client.getRun(id);
        this.transformsModel.track(run);
        this._runNotes.follow(run);
        if (run.state !== 'queued' && run.state !== 'running') {
          this._runNotes.finished(run);
        }
      } catch (error) {
        console.warn(`infinstor_jlab: cannot follow run ${id}`, error);
      }
    }
  }

  private _pipelinesPanel: MainAreaWidget<PipelinesContent> | null = null;
  private _schedulesPanel: MainAreaWidget<SchedulesContent> | null = null;
  private readonly _pipelinesTracker: WidgetTracker<
    MainAreaWidget<PipelinesContent>
  > | null;
  private readonly _schedulesTracker: WidgetTracker<
    MainAreaWidget<SchedulesContent>
  > | null;
  private _pipelineNotes = new PipelineNotifications({
    showRun: run => void this.openPipelines(run.pipeline),
    openOutput: uri => this._openUri(uri)
  });

  private _resizeObserver: ResizeObserver | null = null;
  private _contentObserver: MutationObserver | null = null;
  private _observed = new WeakSet<Element>();
  private _fitFrame = 0;
  private _fitTimer = 0;
  private _browserMin = 0;
  private _runsPanel: MainAreaWidget<TransformRunsContent> | null = null;
  private _credentialsPanel: MainAreaWidget<CredentialsContent> | null = null;
  private readonly _runsTracker: WidgetTracker<
    MainAreaWidget<TransformRunsContent>
  > | null;

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
    /** Tracks the *Transform Runs* panel for the layout restorer. */
    runsTracker?: WidgetTracker<MainAreaWidget<TransformRunsContent>>;
    /** Pipelines (default: a model over the same client). */
    pipelines?: PipelinesModel;
    /** Schedules (default: a model over the same client). */
    schedules?: SchedulesModel;
    pipelinesTracker?: WidgetTracker<MainAreaWidget<PipelinesContent>>;
    schedulesTracker?: WidgetTracker<MainAreaWidget<SchedulesContent>>;
    translator?: SidePanel.IOptions['translator'];
  }
}

export { infinstorIcon };
