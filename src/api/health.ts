import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { InfinstorClient } from './client';
import { VERSION, versionsMatch } from '../version';
import { trans } from '../i18n';

/**
 * Warn when the server extension is missing or is another version than this
 * front end.
 */
export async function checkHealth(client: InfinstorClient): Promise<boolean> {
  try {
    const health = await client.health();
    if (!versionsMatch(health.version)) {
      Notification.warning(
        trans.__(
          'The infinstor_jlab server extension is version %1, but this JupyterLab front end is %2. Install one version of infinstor_jlab (pip install infinstor_jlab==%2) and restart JupyterLab.',
          health.version,
          VERSION
        ),
        { autoClose: false }
      );
    }
    return true;
  } catch (error) {
    const missing =
      error instanceof ServerConnection.ResponseError &&
      error.response.status === 404;
    Notification.warning(
      missing
        ? trans.__(
            'The infinstor_jlab server extension is not running, so the S3 Time Travel sidebar cannot work. Enable it (jupyter server extension enable infinstor_jlab) or reinstall infinstor_jlab, then restart JupyterLab.'
          )
        : trans.__(
            'The infinstor_jlab server extension did not answer: %1',
            (error as Error).message || String(error)
          ),
      { autoClose: false }
    );
    return false;
  }
}
