import { IIssuedViewCredential } from '../api/types';
import {
  credentialViewSpec,
  ISnippetContext,
  profileName,
  snippetContext,
  toolSnippets
} from '../browse/toolsnippets';

const CONTEXT: ISnippetContext = {
  endpointUrl: 'http://127.0.0.1:41234',
  keyId: 'INFVKEY',
  secret: 'S3CR3T',
  region: 'us-east-1',
  bucket: 'my-bucket',
  prefix: 'tables/',
  profile: 'infinstor-tm20261101000000'
};

function snippet(id: string, context: ISnippetContext = CONTEXT) {
  const found = toolSnippets(context).find(s => s.id === id);
  if (!found) {
    throw new Error(`no ${id} snippet`);
  }
  return found;
}

function issued(
  view: Partial<IIssuedViewCredential['view']>
): IIssuedViewCredential {
  const v = {
    bucket: 'my-bucket',
    prefix: 'tables/',
    kind: 'snapshot' as const,
    start_ms: null,
    end_ms: 1,
    spec: 'tm20261101000000',
    canonical: 'tm20261101000000',
    display: 'as of 2026-11-01 00:00:00 UTC',
    label: null,
    ...view
  };
  return {
    endpoint_url: 'http://127.0.0.1:41234',
    aws_access_key_id: 'INFVKEY',
    aws_secret_access_key: 'S3CR3T',
    region: 'us-east-1',
    view: v,
    expires: null,
    credential: {
      aws_access_key_id: 'INFVKEY',
      view: v,
      created: '',
      created_ms: 0,
      expires: null,
      expires_ms: null,
      revoked_ms: null,
      state: 'active',
      secret_fingerprint: '',
      description: ''
    }
  };
}

describe('credentialViewSpec', () => {
  it('sends a snapshot, a slice or label:/NAME as the view', () => {
    expect(credentialViewSpec({ at: 'tm20261101000000' })).toBe(
      'tm20261101000000'
    );
    expect(credentialViewSpec({ slice: 'tmA-tmB' })).toBe('tmA-tmB');
    expect(credentialViewSpec({ label: 'flowers-2026-11' })).toBe(
      'label:/flowers-2026-11'
    );
    expect(credentialViewSpec({ label: 'label:/flowers' })).toBe(
      'label:/flowers'
    );
    expect(credentialViewSpec({})).toBe('');
  });
});

describe('profileName', () => {
  it('names the profile as `endpoint credentials` does', () => {
    expect(profileName({ label: null, canonical: 'tm20261101000000' })).toBe(
      'infinstor-tm20261101000000'
    );
    expect(profileName({ label: 'Flowers 2026/11', canonical: 'tm1' })).toBe(
      'infinstor-flowers-2026-11'
    );
    expect(
      profileName({ label: null, canonical: 'tmA-tmB/' + 'x'.repeat(60) })
    ).toHaveLength('infinstor-'.length + 48);
  });
});

describe('snippetContext', () => {
  it("takes the credential's own bucket and prefix (a label's)", () => {
    const c = snippetContext(
      issued({ bucket: 'labelled', prefix: 'flowers', label: 'fl' }),
      'other',
      'ignored/'
    );
    expect(c.bucket).toBe('labelled');
    expect(c.prefix).toBe('flowers/');
    expect(c.profile).toBe('infinstor-fl');
    expect(c.secret).toBe('S3CR3T');
  });

  it('falls back to the sidebar bucket for an every-bucket credential', () => {
    const c = snippetContext(issued({ bucket: null, prefix: '' }), 'b', 'p/');
    expect(c.bucket).toBe('b');
    expect(c.prefix).toBe('p/');
  });
});

describe('toolSnippets', () => {
  it('offers every client the issue names, in order', () => {
    expect(toolSnippets(CONTEXT).map(s => s.title)).toEqual([
      'pandas',
      'pyarrow',
      'Polars',
      'DuckDB',
      'Spark (S3A)',
      'AWS CLI',
      'PyTorch'
    ]);
  });

  it('reads the folder with pandas through s3fs options (README)', () => {
    expect(snippet('pandas').code).toBe(
      [
        'import pandas as pd',
        '',
        "URL = 'http://127.0.0.1:41234'",
        "KEY = 'INFVKEY'",
        "SECRET = 'S3CR3T'",
        'opts = {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": URL}}',
        "df = pd.read_parquet('s3://my-bucket/tables/', storage_options=opts)",
        "# pd.read_csv('s3://my-bucket/tables/data.csv', storage_options=opts)"
      ].join('\n')
    );
  });

  it('gives pyarrow the scheme of the endpoint and a bucket/prefix path', () => {
    const code = snippet('pyarrow').code;
    expect(code).toContain(
      "fs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=URL, scheme='http',"
    );
    expect(code).toContain("ds.dataset('my-bucket/tables', filesystem=s3");
    const https = snippet('pyarrow', {
      ...CONTEXT,
      endpointUrl: 'https://s3.example.org'
    }).code;
    expect(https).toContain("scheme='https'");
  });

  it('lets Polars use http only for an http endpoint', () => {
    expect(snippet('polars').code).toContain('"aws_allow_http": "true"');
    expect(snippet('polars').code).toContain(
      "pl.scan_parquet('s3://my-bucket/tables/**/*.parquet', storage_options=opts, hive_partitioning=True)"
    );
    expect(
      snippet('polars', { ...CONTEXT, endpointUrl: 'https://s3.example.org' })
        .code
    ).not.toContain('aws_allow_http');
  });

  it('gives DuckDB host:port, path style and no SSL for http', () => {
    const code = snippet('duckdb').code;
    expect(code).toContain("KEY_ID 'INFVKEY', SECRET 'S3CR3T'");
    expect(code).toContain("ENDPOINT '127.0.0.1:41234', URL_STYLE 'path'");
    expect(code).toContain('USE_SSL false');
    expect(code).toContain(
      "SELECT count(*) FROM read_parquet('s3://my-bucket/tables/**/*.parquet')"
    );
  });

  it('sets every S3A setting of the README for Spark', () => {
    const code = snippet('spark').code;
    for (const setting of [
      "'spark.hadoop.fs.s3a.endpoint', URL",
      "'spark.hadoop.fs.s3a.path.style.access', 'true'",
      "'spark.hadoop.fs.s3a.connection.ssl.enabled', 'false'",
      "'spark.hadoop.fs.s3a.aws.credentials.provider', 'org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider'",
      "'spark.hadoop.fs.s3a.access.key', KEY",
      "'spark.hadoop.fs.s3a.secret.key', SECRET",
      "'spark.hadoop.fs.s3a.change.detection.source', 'etag'"
    ]) {
      expect(code).toContain(setting);
    }
    expect(code).toContain("spark.read.parquet('s3a://my-bucket/tables/')");
  });

  it('shows the AWS CLI profile and inserts a cell that writes it', () => {
    const s = snippet('awscli');
    expect(s.code).toContain(
      [
        '[profile infinstor-tm20261101000000]',
        'aws_access_key_id = INFVKEY',
        'aws_secret_access_key = S3CR3T',
        'region = us-east-1',
        'endpoint_url = http://127.0.0.1:41234'
      ].join('\n')
    );
    expect(s.code).toContain(
      'aws s3 ls s3://my-bucket/tables/ --profile infinstor-tm20261101000000'
    );
    expect(s.cell.split('\n')[0]).toBe('%%bash');
    expect(s.cell).toContain(
      'aws configure set endpoint_url http://127.0.0.1:41234 --profile infinstor-tm20261101000000'
    );
  });

  it('reads every object under the folder in a PyTorch dataset', () => {
    const code = snippet('pytorch').code;
    expect(code).toContain('from torch.utils.data import DataLoader, Dataset');
    expect(code).toContain("DataLoader(ViewDataset('my-bucket/tables')");
  });

  it('quotes odd keys, secrets and folders in every language', () => {
    const odd = {
      ...CONTEXT,
      secret: "a'b\\c",
      prefix: "it's here/"
    };
    const snippets = toolSnippets(odd);
    const get = (id: string) => snippets.find(s => s.id === id)!;
    expect(get('pandas').code).toContain("SECRET = 'a\\'b\\\\c'");
    expect(get('pandas').code).toContain("'s3://my-bucket/it\\'s here/'");
    // SQL doubles the quote, inside a Python literal that escapes the backslash.
    expect(get('duckdb').code).toContain(`SECRET 'a''b\\\\c'`);
    expect(get('awscli').cell).toContain(
      "aws configure set aws_secret_access_key 'a'\\''b\\c' --profile"
    );
    expect(get('awscli').code).toContain(
      "aws s3 ls 's3://my-bucket/it'\\''s here/'"
    );
  });
});
