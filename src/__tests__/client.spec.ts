import { ServerConnection } from '@jupyterlab/services';

import { InfinstorClient, queryString } from '../api/client';

interface ISent {
  url: string;
  method: string;
  body: string;
  headers: Headers;
}

/**
 * A client whose fetch records each request and answers with `reply`.
 */
function makeClient(
  reply: (url: string) => Response | Promise<Response>,
  token = ''
): { client: InfinstorClient; sent: ISent[] } {
  const sent: ISent[] = [];
  const fetchMock = async (input: RequestInfo, init?: RequestInit) => {
    const request = new Request(input, init);
    sent.push({
      // JupyterLab appends a cache buster (`&<epoch ms>`) to no-store GETs.
      url: request.url.replace(/[?&]\d{10,}$/, ''),
      method: request.method,
      body: await request.text(),
      headers: request.headers
    });
    return reply(request.url);
  };
  const serverSettings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost:8888/lab-base/',
    wsUrl: 'ws://localhost:8888/lab-base/',
    token,
    fetch: fetchMock as any
  });
  return { client: new InfinstorClient({ serverSettings }), sent };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' }
  });
}

const PAGE = {
  objects: [],
  prefixes: [],
  next_token: null,
  bucket: 'b',
  prefix: '',
  delimiter: '/',
  spec: {
    kind: 'snapshot',
    start_ms: null,
    end_ms: 1,
    canonical: 'x',
    display: 'as of x',
    label: null
  }
};

describe('queryString', () => {
  it('encodes values, keeps empty strings and drops undefined', () => {
    expect(
      queryString({ a: 'x/y z', b: undefined, c: '', d: 3, e: true })
    ).toBe('?a=x%2Fy%20z&c=&d=3&e=1');
    expect(queryString({})).toBe('');
  });
});

describe('InfinstorClient', () => {
  it('lists a page with the view, max_keys and page_token (never token)', async () => {
    const { client, sent } = makeClient(() => json(PAGE));
    const page = await client.listObjects('my-bucket', {
      prefix: 'flowers/rose petals/',
      delimiter: '/',
      at: 'tm20261120100000',
      max_keys: 500,
      page_token: 'eyJwIjogIngifQ=='
    });
    expect(page.spec.display).toBe('as of x');
    expect(sent).toHaveLength(1);
    const url = new URL(sent[0].url);
    expect(url.pathname).toBe('/lab-base/infinstor/buckets/my-bucket/objects');
    expect(url.searchParams.get('prefix')).toBe('flowers/rose petals/');
    expect(url.searchParams.get('delimiter')).toBe('/');
    expect(url.searchParams.get('at')).toBe('tm20261120100000');
    expect(url.searchParams.get('max_keys')).toBe('500');
    expect(url.searchParams.get('page_token')).toBe('eyJwIjogIngifQ==');
    expect(url.searchParams.has('token')).toBe(false);
    expect(sent[0].method).toBe('GET');
  });

  it('sends a slice or a label instead of at', async () => {
    const { client, sent } = makeClient(() => json(PAGE));
    await client.listObjects('b', { slice: 'tmA-tmB' });
    await client.listObjects('b', { label: 'flowers-v1', prefix: '' });
    expect(new URL(sent[0].url).search).toBe('?slice=tmA-tmB');
    expect(new URL(sent[1].url).search).toBe('?prefix=&label=flowers-v1');
  });

  it('posts track consent and events as JSON', async () => {
    const { client, sent } = makeClient(() =>
      json({ name: 'b', tracked: true, sync_job: 'j1' })
    );
    const result = await client.track('b', {
      enable_versioning: true,
      events: false
    });
    expect(result.sync_job).toBe('j1');
    expect(sent[0].method).toBe('POST');
    expect(sent[0].url).toBe(
      'http://localhost:8888/lab-base/infinstor/buckets/b/track'
    );
    expect(JSON.parse(sent[0].body)).toEqual({
      enable_versioning: true,
      events: false
    });
  });

  it('polls a sync job and encodes path segments', async () => {
    const { client, sent } = makeClient(() =>
      json({ id: 'a/b', state: 'done' })
    );
    await client.syncJob('a/b');
    expect(sent[0].url).toBe(
      'http://localhost:8888/lab-base/infinstor/syncs/a%2Fb'
    );
  });

  it('asks for metadata, history, diff, timeline and time specs', async () => {
    const { client, sent } = makeClient(() => json({}));
    await client.objectMetadata('b', { key: 'a b/c+d.csv', at: 'now' });
    await client.history('b', 'k');
    await client.diff('b', { prefix: 'p/', from: 'tm1', to: 'now' });
    await client.timeline('b', { prefix: 'p/', bins: 120 });
    await client.timespec('label:/x');
    const urls = sent.map(s => new URL(s.url));
    expect(urls[0].pathname).toBe('/lab-base/infinstor/buckets/b/object');
    expect(urls[0].searchParams.get('key')).toBe('a b/c+d.csv');
    expect(urls[0].searchParams.get('at')).toBe('now');
    expect(urls[1].search).toBe('?key=k');
    expect(urls[2].search).toBe('?prefix=p%2F&from=tm1&to=now');
    expect(urls[3].search).toBe('?prefix=p%2F&bins=120');
    expect(urls[4].pathname).toBe('/lab-base/infinstor/timespec');
    expect(urls[4].searchParams.get('spec')).toBe('label:/x');
  });

  it('creates, verifies and deletes labels', async () => {
    const { client, sent } = makeClient(url =>
      url.endsWith('/labels/x') ? new Response(null, { status: 204 }) : json({})
    );
    await client.createLabel({ name: 'x', bucket: 'b', prefix: '', at: 'tm1' });
    await client.verifyLabel('x', { check_s3: true });
    await expect(client.deleteLabel('x')).resolves.toBeUndefined();
    expect(sent.map(s => `${s.method} ${new URL(s.url).pathname}`)).toEqual([
      'POST /lab-base/infinstor/labels',
      'POST /lab-base/infinstor/labels/x/verify',
      'DELETE /lab-base/infinstor/labels/x'
    ]);
    expect(JSON.parse(sent[0].body)).toEqual({
      name: 'x',
      bucket: 'b',
      prefix: '',
      at: 'tm1'
    });
  });

  it("rejects with the server's sentence", async () => {
    const message =
      "'yesterday' is not a time spec I understand. Accepted time specs: ...";
    const { client } = makeClient(() =>
      json({ message, reason: 'Bad Request' }, 400)
    );
    let error: any = null;
    try {
      await client.timespec('yesterday');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect(error.message).toBe(message);
    expect(error.response.status).toBe(400);
  });

  it('rejects with the status line when the body is not JSON', async () => {
    const { client } = makeClient(
      () => new Response('', { status: 404, statusText: 'Not Found' })
    );
    await expect(client.health()).rejects.toThrow('404 Not Found');
  });

  it('turns a failed fetch into a NetworkError', async () => {
    const { client } = makeClient(() => {
      throw new TypeError('connection refused');
    });
    await expect(client.listBuckets()).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
  });

  it('reads a preview with its headers', async () => {
    const { client, sent } = makeClient(
      () =>
        new Response('a,b\n1,2\n', {
          status: 200,
          headers: {
            'Content-Type': 'text/csv; charset=utf-8',
            'X-Infinstor-Truncated': 'true',
            'X-Infinstor-Version-Id': 'v1'
          }
        })
    );
    const preview = await client.preview('b', {
      key: 'tables/iris.csv',
      version_id: 'v1'
    });
    expect(preview.contentType).toBe('text/csv');
    expect(preview.truncated).toBe(true);
    expect(preview.versionId).toBe('v1');
    expect(await preview.blob.text()).toBe('a,b\n1,2\n');
    const url = new URL(sent[0].url);
    expect(url.searchParams.get('preview')).toBe('1');
    expect(url.searchParams.get('version_id')).toBe('v1');
  });

  it('downloads through a single-use link that carries no token', async () => {
    document.cookie = '_xsrf=abc123';
    const { client, sent } = makeClient(
      () =>
        json(
          {
            ticket: 'T-1',
            url: '/lab-base/infinstor/downloads/T-1',
            expires_ms: 1,
            bucket: 'b',
            key: 'dir/file name.csv',
            version_id: 'v1',
            size: 3
          },
          201
        ),
      'secret-token'
    );
    const url = new URL(
      await client.downloadUrl('b', {
        key: 'dir/file name.csv',
        slice: 'tmA-tmB'
      })
    );
    expect(url.href).toBe(
      'http://localhost:8888/lab-base/infinstor/downloads/T-1'
    );
    expect(url.href).not.toContain('secret-token');
    expect(url.search).toBe('');
    // The ticket comes from an authenticated request (token in the header).
    expect(sent).toHaveLength(1);
    expect(sent[0].method).toBe('POST');
    expect(new URL(sent[0].url).pathname).toBe('/lab-base/infinstor/downloads');
    expect(sent[0].url).not.toContain('secret-token');
    expect(sent[0].headers.get('Authorization')).toBe('token secret-token');
    expect(JSON.parse(sent[0].body)).toEqual({
      bucket: 'b',
      key: 'dir/file name.csv',
      slice: 'tmA-tmB'
    });
  });

  it("fails a download with the server's sentence", async () => {
    const { client } = makeClient(() =>
      json({ message: 'No version of k in this view; pick another time.' }, 404)
    );
    await expect(
      client.downloadUrl('b', { key: 'k', version_id: 'gone' })
    ).rejects.toThrow('No version of k in this view; pick another time.');
  });
});

const CRED_VIEW = {
  bucket: 'my-bucket',
  prefix: 'tables/',
  kind: 'snapshot',
  start_ms: null,
  end_ms: 1793491200999,
  spec: 'tm20261101000000',
  canonical: 'tm20261101000000',
  display: 'as of 2026-11-01 00:00:00 UTC',
  label: null
};

const CRED = {
  aws_access_key_id: 'INFVABC',
  view: CRED_VIEW,
  created: '2026-12-01T00:00:00Z',
  created_ms: 1796083200000,
  expires: '2026-12-08T00:00:00Z',
  expires_ms: 1796688000000,
  revoked_ms: null,
  state: 'active',
  secret_fingerprint: '0123456789abcdef',
  description: ''
};

describe('InfinstorClient, the S3 endpoint', () => {
  it('reads where the endpoint listens', async () => {
    const state = {
      running: true,
      enabled: true,
      url: 'http://127.0.0.1:41234',
      region: 'us-east-1',
      error: null
    };
    const { client, sent } = makeClient(() => json(state));
    await expect(client.endpoint()).resolves.toEqual(state);
    expect(sent[0].method).toBe('GET');
    expect(new URL(sent[0].url).pathname).toBe('/lab-base/infinstor/endpoint');
  });

  it('issues a credential for one view with the JSON body', async () => {
    const issued = {
      endpoint_url: 'http://127.0.0.1:41234',
      aws_access_key_id: 'INFVABC',
      aws_secret_access_key: 's3cr3t',
      region: 'us-east-1',
      view: CRED_VIEW,
      expires: CRED.expires,
      credential: CRED
    };
    const { client, sent } = makeClient(() => json(issued, 201));
    const body = {
      view: 'tm20261101000000',
      bucket: 'my-bucket',
      prefix: 'tables/',
      expires: '7d'
    };
    await expect(client.issueViewCredential(body)).resolves.toEqual(issued);
    expect(sent[0].method).toBe('POST');
    expect(new URL(sent[0].url).pathname).toBe(
      '/lab-base/infinstor/endpoint/credentials'
    );
    expect(sent[0].headers.get('Content-Type')).toBe('application/json');
    expect(JSON.parse(sent[0].body)).toEqual(body);
  });

  it('lists credentials and revokes one by its key id', async () => {
    const { client, sent } = makeClient(url =>
      url.includes('/credentials/')
        ? json({ ...CRED, state: 'revoked', revoked_ms: 1 })
        : json({ credentials: [CRED] })
    );
    const list = await client.listViewCredentials();
    expect(list.credentials.map(c => c.aws_access_key_id)).toEqual(['INFVABC']);
    const revoked = await client.revokeViewCredential('INFV/odd key');
    expect(revoked.state).toBe('revoked');
    expect(sent[1].method).toBe('DELETE');
    expect(new URL(sent[1].url).pathname).toBe(
      '/lab-base/infinstor/endpoint/credentials/INFV%2Fodd%20key'
    );
  });

  it("fails to issue with the server's sentence when the endpoint is off", async () => {
    const sentence =
      'The S3 endpoint is not running in this Jupyter server; run `infinstor-jlab endpoint serve`.';
    const { client } = makeClient(() => json({ message: sentence }, 409));
    await expect(
      client.issueViewCredential({ view: 'tm20261101000000' })
    ).rejects.toThrow(sentence);
  });
});
