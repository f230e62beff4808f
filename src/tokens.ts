/**
 * The extension's own tokens: its settings, its plugin id and its command ids.
 *
 * The REST API's request and response shapes live in `api/types.ts`.
 */

/** User settings of the extension (schema/plugin.json). */
export interface ISettings {
  defaultBucket: string;
  timeDisplay: 'local' | 'utc';
  pageSize: number;
  /** Seconds. */
  pollInterval: number;
}

export const DEFAULT_SETTINGS: ISettings = {
  defaultBucket: '',
  timeDisplay: 'local',
  pageSize: 500,
  pollInterval: 10
};

/** Ids of the plugin and of its commands. */
export const PLUGIN_ID = 'infinstor_jlab:plugin';

export namespace CommandIDs {
  export const open = 'infinstor:open';
  export const refresh = 'infinstor:refresh';
  export const preview = 'infinstor:preview';
  export const download = 'infinstor:download';
  export const insertCode = 'infinstor:insert-code';
  export const history = 'infinstor:history';
  export const createLabel = 'infinstor:create-label';
  export const diff = 'infinstor:diff';
  export const copyKey = 'infinstor:copy-key';
  export const runCellAsTransform = 'infinstor:run-cell-as-transform';
  export const openTransforms = 'infinstor:open-transforms';
  export const openPipelines = 'infinstor:open-pipelines';
  export const openSchedules = 'infinstor:open-schedules';
  export const otherTools = 'infinstor:use-from-other-tools';
  export const viewCredentials = 'infinstor:view-credentials';
  export const restoreFolder = 'infinstor:restore-folder';
  export const downloadFolder = 'infinstor:download-folder';
  export const useLabel = 'infinstor:use-label';
  export const verifyLabel = 'infinstor:verify-label';
  export const labelDetails = 'infinstor:label-details';
  export const deleteLabel = 'infinstor:delete-label';
}
