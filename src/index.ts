import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { IStateDB } from '@jupyterlab/statedb';
import { ITranslator } from '@jupyterlab/translation';
import {
  codeIcon,
  copyIcon,
  deleteIcon,
  downloadIcon,
  historyIcon,
  launchIcon,
  refreshIcon,
  searchIcon,
  tagIcon
} from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

// The sidebar is created at activation, so these load with the plugin anyway.
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { InfinstorActions, IObjectTarget } from './browse/actions';
// eslint-disable-next-line jupyter/prefer-lazy-imports
import {
  downloadFolderWithDialog,
  restoreTarget,
  restoreWithDialog
} from './browse/restore';
import { InfinstorClient } from './api/client';
import { infinstorIcon } from './icons';
import { InfinstorModel, IViewState } from './model';
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { InfinstorPanel, SIDEBAR_ID } from './panel';
import { CommandIDs, DEFAULT_SETTINGS, ISettings, PLUGIN_ID } from './tokens';
import { TransformsModel } from './transforms/model';
import type { TransformRunsContent } from './transforms/section';
import { PipelinesModel } from './pipelines/model';
import type { PipelinesContent } from './pipelines/tab';
import { SchedulesModel } from './schedules/model';
import type { SchedulesContent } from './schedules/tab';
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { ActiveRunsStatus } from './statusbar';
// eslint-disable-next-line jupyter/prefer-lazy-imports
import { deleteLabelWithConfirm } from './sections/labels';
import { setTranslator, trans } from './i18n';

export { InfinstorModel } from './model';
export { InfinstorClient } from './api/client';
export { TransformsModel } from './transforms/model';
export { PipelinesModel } from './pipelines/model';
export { SchedulesModel } from './schedules/model';
export * from './tokens';
export * from './api/types';

/** Where the view (bucket, folder, time) is kept across reloads. */
const STATE_KEY = 'infinstor_jlab:view';

function readSettings(settings: ISettingRegistry.ISettings): ISettings {
  const c = settings.composite as Partial<ISettings>;
  return {
    defaultBucket:
      typeof c.defaultBucket === 'string'
        ? c.defaultBucket
        : DEFAULT_SETTINGS.defaultBucket,
    timeDisplay: c.timeDisplay === 'utc' ? 'utc' : 'local',
    pageSize:
      typeof c.pageSize === 'number' ? c.pageSize : DEFAULT_SETTINGS.pageSize,
    pollInterval:
      typeof c.pollInterval === 'number'
        ? c.pollInterval
        : DEFAULT_SETTINGS.pollInterval
  };
}

/**
 * The S3 Time Travel sidebar of infinstor_jlab.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Snapshots, slices and labels of versioned S3 buckets, and transforms over them.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    IStateDB,
    INotebookTracker,
    ITranslator,
    IStatusBar
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    state: IStateDB | null,
    notebooks: INotebookTracker | null,
    translator: ITranslator | null,
    statusBar: IStatusBar | null
  ) => {
    console.log('JupyterLab extension infinstor_jlab is activated!');
    setTranslator(translator);

    const client = new InfinstorClient({
      serverSettings: app.serviceManager.serverSettings
    });
    const model = new InfinstorModel({ client });
    const transforms = new TransformsModel({ client });
    const actions = new InfinstorActions({
      app,
      model,
      notebooks,
      sidebarId: SIDEBAR_ID
    });
    const runsTracker = new WidgetTracker<MainAreaWidget<TransformRunsContent>>(
      { namespace: 'infinstor-runs' }
    );
    const pipelines = new PipelinesModel({ client });
    const schedules = new SchedulesModel({ client });
    const pipelinesTracker = new WidgetTracker<
      MainAreaWidget<PipelinesContent>
    >({ namespace: 'infinstor-pipelines' });
    const schedulesTracker = new WidgetTracker<
      MainAreaWidget<SchedulesContent>
    >({ namespace: 'infinstor-schedules' });
    const panel = new InfinstorPanel({
      model,
      actions,
      transforms,
      runsTracker,
      pipelines,
      schedules,
      pipelinesTracker,
      schedulesTracker,
      translator: translator ?? undefined
    });
    app.shell.add(panel, 'left', { rank: 850, type: 'S3 Time Travel' });
    if (restorer) {
      restorer.add(panel, SIDEBAR_ID);
    }

    // -- commands -----------------------------------------------------------------------
    const { commands } = app;
    const targetFrom = (
      args: ReadonlyPartialJSONObject
    ): IObjectTarget | null => {
      if (typeof args.key === 'string' && model.bucket) {
        return {
          bucket: typeof args.bucket === 'string' ? args.bucket : model.bucket,
          key: args.key,
          kind: args.kind === 'folder' ? 'folder' : 'file',
          view: model.pinnedViewParams(),
          display: model.spec?.display
        };
      }
      return actions.target();
    };
    const fileSelected = (args: ReadonlyPartialJSONObject) =>
      targetFrom(args)?.kind === 'file';
    const noArgs = { args: { type: 'object' as const, properties: {} } };
    const objectArgs = {
      args: {
        type: 'object' as const,
        properties: {
          bucket: {
            type: 'string',
            description: 'Bucket (default: the one the sidebar shows)'
          },
          key: {
            type: 'string',
            description:
              'Object key or folder prefix (default: the selected entry), seen at the sidebar time'
          },
          kind: {
            type: 'string',
            enum: ['file', 'folder'],
            description: 'Whether key is an object or a folder (default file)'
          }
        }
      }
    };

    commands.addCommand(CommandIDs.open, {
      describedBy: noArgs,
      label: trans.__('Open S3 Time Travel'),
      caption: trans.__('Browse S3 buckets as they were at any time'),
      icon: args => (args.isPalette ? undefined : infinstorIcon),
      execute: () => {
        app.shell.activateById(SIDEBAR_ID);
      }
    });
    commands.addCommand(CommandIDs.refresh, {
      describedBy: noArgs,
      label: trans.__('Refresh S3 Time Travel'),
      icon: args => (args.isPalette ? undefined : refreshIcon),
      execute: () => panel.refreshAll()
    });
    commands.addCommand(CommandIDs.preview, {
      describedBy: objectArgs,
      label: trans.__('Preview This Version'),
      icon: searchIcon,
      isEnabled: fileSelected,
      execute: args => {
        actions.preview(targetFrom(args));
      }
    });
    commands.addCommand(CommandIDs.download, {
      describedBy: objectArgs,
      label: trans.__('Download This Version'),
      icon: downloadIcon,
      isEnabled: fileSelected,
      execute: args => actions.download(targetFrom(args))
    });
    commands.addCommand(CommandIDs.history, {
      describedBy: objectArgs,
      label: trans.__('Show Version History'),
      icon: historyIcon,
      isEnabled: fileSelected,
      execute: args => {
        actions.history(targetFrom(args));
      }
    });
    commands.addCommand(CommandIDs.insertCode, {
      describedBy: objectArgs,
      label: trans.__('Insert Code Reading This in the Notebook'),
      icon: codeIcon,
      isEnabled: args => targetFrom(args) !== null,
      execute: args => actions.insertCode(targetFrom(args))
    });
    commands.addCommand(CommandIDs.copyKey, {
      describedBy: objectArgs,
      label: trans.__('Copy S3 URI'),
      icon: copyIcon,
      isEnabled: args => targetFrom(args) !== null,
      execute: args => actions.copyUri(targetFrom(args))
    });
    commands.addCommand(CommandIDs.createLabel, {
      describedBy: noArgs,
      label: trans.__('New Label from the Current S3 View'),
      icon: args => (args.isPalette ? undefined : tagIcon),
      isEnabled: () => model.bucket !== null,
      execute: () => panel.createLabel()
    });
    commands.addCommand(CommandIDs.otherTools, {
      describedBy: noArgs,
      label: trans.__('Use from Other Tools…'),
      caption: trans.__(
        'An S3 endpoint and a credential for exactly the current view, with code for pandas, pyarrow, Polars, DuckDB, Spark, the AWS CLI and PyTorch'
      ),
      icon: args => (args.isPalette ? undefined : launchIcon),
      isEnabled: () => model.bucket !== null,
      execute: () => panel.useFromOtherTools()
    });
    commands.addCommand(CommandIDs.viewCredentials, {
      describedBy: noArgs,
      label: trans.__('View Credentials of the S3 Endpoint'),
      caption: trans.__(
        'Every view credential (key id, view, expiry, state), in a tab; revoke one'
      ),
      icon: args => (args.isPalette ? undefined : launchIcon),
      execute: () => {
        panel.openCredentials();
      }
    });
    /** The folder a folder command acts on: the given or selected folder, else the current one. */
    const folderFrom = (
      args: ReadonlyPartialJSONObject
    ): IObjectTarget | null => {
      const target = targetFrom(args);
      if (target === null) {
        return actions.folderTarget();
      }
      return target.kind === 'folder' ? target : null;
    };
    commands.addCommand(CommandIDs.restoreFolder, {
      describedBy: objectArgs,
      label: trans.__('Restore This Folder to This Time…'),
      caption: trans.__(
        'Make the live folder equal this past view: old versions copied back, delete markers for the rest (the plan is shown first)'
      ),
      isEnabled: args => {
        const target = folderFrom(args);
        return (
          target !== null &&
          restoreTarget(model.pinnedViewParams(), model.mode) !== null
        );
      },
      execute: async args => {
        const target = folderFrom(args);
        const to = restoreTarget(model.pinnedViewParams(), model.mode);
        if (!target || !to) {
          return null;
        }
        return restoreWithDialog({
          client: model.client,
          bucket: target.bucket,
          prefix: target.key,
          to,
          onOpen: action =>
            actions.preview({
              bucket: target.bucket,
              key: action.key,
              kind: 'file',
              versionId: action.version_id
            }),
          onDone: () => panel.refreshAll()
        });
      }
    });
    commands.addCommand(CommandIDs.downloadFolder, {
      describedBy: objectArgs,
      label: trans.__('Download This Folder into the File Browser…'),
      icon: downloadIcon,
      isEnabled: args => folderFrom(args) !== null,
      execute: async args => {
        const target = folderFrom(args);
        if (!target) {
          return null;
        }
        return downloadFolderWithDialog({
          client: model.client,
          bucket: target.bucket,
          prefix: target.key,
          view: target.view ?? {}
        });
      }
    });
    commands.addCommand(CommandIDs.diff, {
      describedBy: noArgs,
      label: trans.__('Compare Two Times (S3 Diff)'),
      execute: () => {
        app.shell.activateById(SIDEBAR_ID);
        panel.expand(panel.diff);
      }
    });

    /**
     * The code cell the command acts on: the cell right-clicked (from the
     * context menu; a right-click does not make a cell active), else the
     * notebook's active cell.
     */
    const currentCodeCell = () => {
      const notebook = notebooks?.currentWidget?.content ?? null;
      const hit = app.contextMenuHitTest(node =>
        node.classList.contains('jp-CodeCell')
      );
      const clicked = hit
        ? (notebook?.widgets.find(w => w.node === hit) ?? null)
        : null;
      const cell = clicked ?? notebook?.activeCell ?? null;
      return cell && cell.model.type === 'code' ? cell : null;
    };
    commands.addCommand(CommandIDs.runCellAsTransform, {
      describedBy: noArgs,
      label: trans.__('Run cell as transform…'),
      caption: trans.__(
        'Store this code cell as a transform revision and run it over a snapshot, a slice or a label (locally, on Spark or on Amazon EMR)'
      ),
      isEnabled: () => currentCodeCell() !== null,
      execute: async () => {
        const cell = currentCodeCell();
        if (!cell) {
          return null;
        }
        return panel.runCell(cell.model.sharedModel.getSource());
      }
    });
    commands.addCommand(CommandIDs.openTransforms, {
      describedBy: noArgs,
      label: trans.__('Show Transform Runs'),
      caption: trans.__(
        'Every transform run and transform, in a main-area tab (one tab, reused)'
      ),
      execute: () => {
        panel.openRuns(null);
        void transforms.refresh();
      }
    });
    commands.addCommand(CommandIDs.openPipelines, {
      describedBy: noArgs,
      label: trans.__('Show Pipelines'),
      caption: trans.__(
        'Pipelines of transforms in a main-area tab: define one, run it (with the result cache), follow each step'
      ),
      execute: () => {
        panel.openPipelines(null);
      }
    });
    commands.addCommand(CommandIDs.openSchedules, {
      describedBy: noArgs,
      label: trans.__('Show Schedules'),
      caption: trans.__(
        'Schedules of transforms in a main-area tab: next run, last result, pause/resume, history of windows'
      ),
      execute: () => {
        panel.openSchedules();
      }
    });
    if (restorer) {
      // A Transform Runs tab left open comes back with the workspace.
      void restorer.restore(runsTracker, {
        command: CommandIDs.openTransforms,
        name: () => 'runs'
      });
      void restorer.restore(pipelinesTracker, {
        command: CommandIDs.openPipelines,
        name: () => 'pipelines'
      });
      void restorer.restore(schedulesTracker, {
        command: CommandIDs.openSchedules,
        name: () => 'schedules'
      });
    }
    if (statusBar) {
      const item = new ActiveRunsStatus(transforms, pipelines, () => {
        panel.openRuns(null);
      });
      statusBar.registerStatusItem(`${PLUGIN_ID}:active-runs`, {
        item,
        align: 'left',
        rank: 50,
        isActive: () => item.count > 0,
        activeStateChanged: item.activeStateChanged
      });
    }
    app.contextMenu.addItem({
      command: CommandIDs.runCellAsTransform,
      selector: '.jp-Notebook .jp-CodeCell',
      rank: 100
    });

    if (palette) {
      const category = trans.__('S3 Time Travel');
      for (const command of [
        CommandIDs.open,
        CommandIDs.refresh,
        CommandIDs.createLabel,
        CommandIDs.otherTools,
        CommandIDs.viewCredentials,
        CommandIDs.diff,
        CommandIDs.runCellAsTransform,
        CommandIDs.openTransforms,
        CommandIDs.openPipelines,
        CommandIDs.openSchedules,
        CommandIDs.restoreFolder,
        CommandIDs.downloadFolder
      ]) {
        palette.addItem({ command, category });
      }
    }

    // -- labels: the card's actions, also in its context menu ------------------------------
    const labelFrom = (args: ReadonlyPartialJSONObject): string | null => {
      if (typeof args.name === 'string' && args.name) {
        return args.name;
      }
      const node = app.contextMenuHitTest(n => n.dataset.label !== undefined);
      return node?.dataset.label ?? null;
    };
    const labelArgs = {
      args: {
        type: 'object' as const,
        properties: {
          name: {
            type: 'string',
            description: 'Label name (default: the label card right-clicked)'
          }
        }
      }
    };
    commands.addCommand(CommandIDs.useLabel, {
      describedBy: labelArgs,
      label: trans.__('Use Label'),
      execute: args => {
        const name = labelFrom(args);
        if (name) {
          model.useLabel(name);
        }
      }
    });
    commands.addCommand(CommandIDs.verifyLabel, {
      describedBy: labelArgs,
      label: trans.__('Verify Label'),
      execute: async args => {
        const name = labelFrom(args);
        if (name) {
          await actions.verifyLabel(name);
        }
      }
    });
    commands.addCommand(CommandIDs.labelDetails, {
      describedBy: labelArgs,
      label: trans.__('Show Label Details'),
      execute: args => {
        const name = labelFrom(args);
        return name ? actions.labelDetails(name) : null;
      }
    });
    commands.addCommand(CommandIDs.deleteLabel, {
      describedBy: labelArgs,
      label: trans.__('Delete Label…'),
      icon: deleteIcon,
      execute: async args => {
        const name = labelFrom(args);
        return name ? deleteLabelWithConfirm(model, name) : false;
      }
    });
    [
      CommandIDs.useLabel,
      CommandIDs.verifyLabel,
      CommandIDs.labelDetails,
      CommandIDs.deleteLabel
    ].forEach((command, rank) => {
      app.contextMenu.addItem({
        command,
        selector: '.jp-Infinstor-label',
        rank: rank + 1
      });
    });

    const selector = '.jp-Infinstor-row';
    [
      CommandIDs.preview,
      CommandIDs.download,
      CommandIDs.history,
      CommandIDs.insertCode,
      CommandIDs.copyKey,
      CommandIDs.downloadFolder,
      CommandIDs.restoreFolder,
      // Here and in the palette, not on the browser's toolbar: a fourth button there
      // crowded it at the sidebar's default width.
      CommandIDs.otherTools
    ].forEach((command, rank) => {
      app.contextMenu.addItem({ command, selector, rank: rank + 1 });
    });

    // -- settings, saved view, first load -----------------------------------------------
    const settingsLoaded: Promise<void> = settingRegistry
      ? settingRegistry
          .load(PLUGIN_ID)
          .then(settings => {
            model.updateSettings(readSettings(settings));
            settings.changed.connect(() =>
              model.updateSettings(readSettings(settings))
            );
          })
          .catch(reason => {
            console.error(
              'Failed to load settings for infinstor_jlab.',
              reason
            );
          })
      : Promise.resolve();

    const saved: Promise<IViewState | null> = state
      ? state
          .fetch(STATE_KEY)
          .then(value => (value as unknown as IViewState) ?? null)
          .catch(() => null)
      : Promise.resolve(null);

    void Promise.all([settingsLoaded, saved, app.restored]).then(
      async ([, view]) => {
        if (view) {
          model.restore(view);
        }
        if (state) {
          model.stateChanged.connect((_, s) => {
            void state.save(STATE_KEY, s as any);
          });
        }
        const { checkHealth } = await import('./api/health');
        const healthy = await checkHealth(client);
        if (!healthy) {
          return;
        }
        await Promise.all([model.refreshBuckets(), model.refreshLabels()]);
        model.startStatusPoll();
        // Runs still going (this session's or another's) are polled until they end.
        await Promise.all([transforms.refresh(), pipelines.refresh()]);
      }
    );
  }
};

export default plugin;
