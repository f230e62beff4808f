import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { requestAPI } from './handler';

/**
 * Response of `GET infinstor/health`.
 */
export interface IHealth {
  version: string;
  index_schema_version: number;
}

/**
 * Initialization data for the infinstor_jlab extension.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'infinstor_jlab:plugin',
  description:
    'Snapshots, slices and labels of versioned S3 buckets, and transforms over them.',
  autoStart: true,
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry | null
  ) => {
    console.log('JupyterLab extension infinstor_jlab is activated!');

    if (settingRegistry) {
      settingRegistry
        .load(plugin.id)
        .then(settings => {
          console.log('infinstor_jlab settings loaded:', settings.composite);
        })
        .catch(reason => {
          console.error('Failed to load settings for infinstor_jlab.', reason);
        });
    }

    requestAPI<IHealth>('health', {}, app.serviceManager.serverSettings)
      .then(data => {
        console.log(
          `infinstor_jlab server extension ${data.version} (index schema ${data.index_schema_version})`
        );
      })
      .catch(reason => {
        console.warn(
          `The infinstor_jlab server extension appears to be missing.\n${reason}`
        );
      });
  }
};

export default plugin;
