import { Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { InfinstorClient } from '../api/client';
import { checkHealth } from '../api/health';
import { VERSION } from '../version';

function clientAnswering(response: () => Response): InfinstorClient {
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/',
    fetch: (async () => response()) as any
  });
  return new InfinstorClient({ serverSettings });
}

describe('checkHealth', () => {
  let warning: jest.SpyInstance;

  beforeEach(() => {
    warning = jest.spyOn(Notification, 'warning').mockImplementation(() => '');
  });

  afterEach(() => {
    warning.mockRestore();
  });

  it('is quiet when the server extension is this version', async () => {
    const client = clientAnswering(
      () =>
        new Response(
          JSON.stringify({ version: VERSION, index_schema_version: 1 })
        )
    );
    await expect(checkHealth(client)).resolves.toBe(true);
    expect(warning).not.toHaveBeenCalled();
  });

  it('warns when the versions differ', async () => {
    const client = clientAnswering(
      () =>
        new Response(
          JSON.stringify({ version: '9.9.9', index_schema_version: 1 })
        )
    );
    await expect(checkHealth(client)).resolves.toBe(true);
    expect(warning).toHaveBeenCalledTimes(1);
    expect(warning.mock.calls[0][0]).toContain('version 9.9.9');
    expect(warning.mock.calls[0][0]).toContain(`front end is ${VERSION}`);
  });

  it('warns when the server extension is missing (404)', async () => {
    const client = clientAnswering(
      () =>
        new Response('<html>404</html>', {
          status: 404,
          statusText: 'Not Found'
        })
    );
    await expect(checkHealth(client)).resolves.toBe(false);
    expect(warning.mock.calls[0][0]).toContain(
      'The infinstor_jlab server extension is not running'
    );
  });
});
