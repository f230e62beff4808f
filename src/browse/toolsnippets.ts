/**
 * Code that reads one view through the S3 endpoint with a view credential, for the
 * clients that carry S3 clients of their own (README, "Any S3 client reads the past").
 * Pure: a credential and a location in, text out.
 */
import { IIssuedViewCredential, IViewParams } from '../api/types';
import { pyString } from './codegen';
import { trans } from '../i18n';

/** The clients the dialog offers, in its order. */
export type ToolId =
  'pandas' | 'pyarrow' | 'polars' | 'duckdb' | 'spark' | 'awscli' | 'pytorch';

export interface IToolSnippet {
  id: ToolId;
  /** The tab's name. */
  title: string;
  /** What the dialog shows. */
  code: string;
  /** What *Insert code* puts into a notebook cell (Python, or a %%bash cell). */
  cell: string;
}

/** What every snippet is made from. */
export interface ISnippetContext {
  endpointUrl: string;
  keyId: string;
  secret: string;
  region: string;
  /** The bucket the credential reaches (a snippet needs one to read from). */
  bucket: string;
  /** The folder under it ('' or ending in '/'). */
  prefix: string;
  /** The AWS CLI profile's name. */
  profile: string;
}

/**
 * The `view` of `POST endpoint/credentials` for the sidebar's view parameters:
 * a time spec, a slice or `label:/NAME`; '' when the view names nothing.
 */
export function credentialViewSpec(view: IViewParams): string {
  if (view.label) {
    return view.label.startsWith('label:/')
      ? view.label
      : `label:/${view.label}`;
  }
  return view.slice ?? view.at ?? '';
}

/** The AWS CLI profile name of a credential, as `endpoint credentials` prints it. */
export function profileName(view: {
  label: string | null;
  canonical: string;
}): string {
  const base = view.label || view.canonical;
  const slug = base
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase()
    .slice(0, 48);
  return `infinstor-${slug}`;
}

/** The context of an issued credential (its own bucket and prefix when it has them). */
export function snippetContext(
  cred: IIssuedViewCredential,
  fallbackBucket: string,
  fallbackPrefix = ''
): ISnippetContext {
  const bucket = cred.view.bucket ?? fallbackBucket;
  const prefix = cred.view.bucket ? cred.view.prefix : fallbackPrefix;
  return {
    endpointUrl: cred.endpoint_url,
    keyId: cred.aws_access_key_id,
    secret: cred.aws_secret_access_key,
    region: cred.region || 'us-east-1',
    bucket,
    prefix: prefix && !prefix.endsWith('/') ? `${prefix}/` : prefix,
    profile: profileName(cred.view)
  };
}

/** A DuckDB (SQL) string literal. */
function sqlString(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** A POSIX shell word that stays one word. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text)
    ? text
    : `'${text.replace(/'/g, "'\\''")}'`;
}

function isHttp(url: string): boolean {
  return /^http:\/\//i.test(url);
}

/** host:port of the endpoint URL (DuckDB's ENDPOINT takes no scheme). */
function hostOf(url: string): string {
  return url.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
}

function credentialLines(c: ISnippetContext): string[] {
  return [
    `URL = ${pyString(c.endpointUrl)}`,
    `KEY = ${pyString(c.keyId)}`,
    `SECRET = ${pyString(c.secret)}`
  ];
}

function pandasSnippet(c: ISnippetContext): string {
  const uri = `s3://${c.bucket}/${c.prefix}`;
  return [
    'import pandas as pd',
    '',
    ...credentialLines(c),
    'opts = {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": URL}}',
    `df = pd.read_parquet(${pyString(uri)}, storage_options=opts)`,
    `# pd.read_csv(${pyString(`${uri}data.csv`)}, storage_options=opts)`
  ].join('\n');
}

function pyarrowSnippet(c: ISnippetContext): string {
  const scheme = isHttp(c.endpointUrl) ? 'http' : 'https';
  const path = `${c.bucket}/${c.prefix}`.replace(/\/+$/, '');
  return [
    'from pyarrow import fs, dataset as ds',
    '',
    ...credentialLines(c),
    `s3 = fs.S3FileSystem(access_key=KEY, secret_key=SECRET, endpoint_override=URL, scheme=${pyString(scheme)},`,
    `                     region=${pyString(c.region)})`,
    `table = ds.dataset(${pyString(path)}, filesystem=s3, format="parquet", partitioning="hive").to_table()`
  ].join('\n');
}

function polarsSnippet(c: ISnippetContext): string {
  const glob = `s3://${c.bucket}/${c.prefix}**/*.parquet`;
  const allowHttp = isHttp(c.endpointUrl) ? ', "aws_allow_http": "true"' : '';
  return [
    'import polars as pl',
    '',
    ...credentialLines(c),
    'opts = {"aws_access_key_id": KEY, "aws_secret_access_key": SECRET, "aws_endpoint_url": URL,',
    `        "aws_region": ${pyDouble(c.region)}${allowHttp}}`,
    `lf = pl.scan_parquet(${pyString(glob)}, storage_options=opts, hive_partitioning=True)`
  ].join('\n');
}

/**
 * A double-quoted Python literal (SQL is full of single quotes): JSON's escapes
 * (\", \\, \n, \uXXXX) are all Python's too.
 */
function pyDouble(text: string): string {
  return JSON.stringify(text);
}

function duckdbSnippet(c: ISnippetContext): string {
  const ssl = isHttp(c.endpointUrl) ? 'false' : 'true';
  const secret = [
    `CREATE SECRET view (TYPE s3, KEY_ID ${sqlString(c.keyId)}, SECRET ${sqlString(c.secret)}, `,
    `ENDPOINT ${sqlString(hostOf(c.endpointUrl))}, URL_STYLE 'path', USE_SSL ${ssl}, REGION ${sqlString(c.region)})`
  ];
  const select = `SELECT count(*) FROM read_parquet(${sqlString(`s3://${c.bucket}/${c.prefix}**/*.parquet`)})`;
  return [
    '# httpfs: pip install duckdb==1.5.5 duckdb-extension-httpfs==1.5.5 and LOAD its',
    '# extension file where the machine cannot download extensions.',
    'import duckdb',
    '',
    'duckdb.sql(',
    ...secret.map(part => `    ${pyDouble(part)}`),
    ')',
    `duckdb.sql(${pyDouble(select)}).show()`
  ].join('\n');
}

function sparkSnippet(c: ISnippetContext): string {
  const ssl = isHttp(c.endpointUrl) ? 'false' : 'true';
  const conf = (name: string, value: string) =>
    `    .config(${pyString(`spark.hadoop.fs.s3a.${name}`)}, ${value})`;
  return [
    '# S3A (hadoop-aws on the classpath); the same settings as --conf spark.hadoop.fs.s3a.*',
    'from pyspark.sql import SparkSession',
    '',
    ...credentialLines(c),
    'spark = (',
    '    SparkSession.builder',
    conf('endpoint', 'URL'),
    conf('path.style.access', "'true'"),
    conf('connection.ssl.enabled', pyString(ssl)),
    conf(
      'aws.credentials.provider',
      "'org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider'"
    ),
    conf('access.key', 'KEY'),
    conf('secret.key', 'SECRET'),
    conf('change.detection.source', "'etag'"),
    '    .getOrCreate()',
    ')',
    `df = spark.read.parquet(${pyString(`s3a://${c.bucket}/${c.prefix}`)})`
  ].join('\n');
}

function awsCliSnippet(c: ISnippetContext): string {
  const uri = shellWord(`s3://${c.bucket}/${c.prefix}`);
  const p = shellWord(c.profile);
  return [
    `# ~/.aws/config, used with --profile ${c.profile}:`,
    `[profile ${c.profile}]`,
    `aws_access_key_id = ${c.keyId}`,
    `aws_secret_access_key = ${c.secret}`,
    `region = ${c.region}`,
    `endpoint_url = ${c.endpointUrl}`,
    '',
    `aws s3 ls ${uri} --profile ${p}`,
    `aws s3 cp --recursive ${uri} ./${shellWord(c.profile)} --profile ${p}`
  ].join('\n');
}

/** The AWS CLI snippet as a notebook cell: writes the profile, then lists. */
function awsCliCell(c: ISnippetContext): string {
  const p = shellWord(c.profile);
  const set = (name: string, value: string) =>
    `aws configure set ${name} ${shellWord(value)} --profile ${p}`;
  return [
    '%%bash',
    `# writes the AWS CLI profile ${c.profile} (~/.aws/config and ~/.aws/credentials)`,
    set('aws_access_key_id', c.keyId),
    set('aws_secret_access_key', c.secret),
    set('region', c.region),
    set('endpoint_url', c.endpointUrl),
    `aws s3 ls ${shellWord(`s3://${c.bucket}/${c.prefix}`)} --profile ${p}`
  ].join('\n');
}

function pytorchSnippet(c: ISnippetContext): string {
  const root = `${c.bucket}/${c.prefix}`.replace(/\/+$/, '');
  return [
    '# A PyTorch dataset of every object under the folder, read through s3fs',
    'import s3fs',
    'from torch.utils.data import DataLoader, Dataset',
    '',
    ...credentialLines(c),
    'fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, client_kwargs={"endpoint_url": URL})',
    '',
    '',
    'class ViewDataset(Dataset):',
    '    def __init__(self, root):',
    '        self.keys = sorted(fs.find(root))',
    '',
    '    def __len__(self):',
    '        return len(self.keys)',
    '',
    '    def __getitem__(self, i):',
    '        with fs.open(self.keys[i], "rb") as f:',
    '            return f.read()',
    '',
    '',
    `loader = DataLoader(ViewDataset(${pyString(root)}), batch_size=None)`
  ].join('\n');
}

/** Every client's snippet for one credential, in the dialog's order. */
export function toolSnippets(c: ISnippetContext): IToolSnippet[] {
  const python = (id: ToolId, title: string, code: string): IToolSnippet => ({
    id,
    title,
    code,
    cell: code
  });
  return [
    python('pandas', 'pandas', pandasSnippet(c)),
    python('pyarrow', 'pyarrow', pyarrowSnippet(c)),
    python('polars', 'Polars', polarsSnippet(c)),
    python('duckdb', 'DuckDB', duckdbSnippet(c)),
    python('spark', trans.__('Spark (S3A)'), sparkSnippet(c)),
    {
      id: 'awscli',
      title: trans.__('AWS CLI'),
      code: awsCliSnippet(c),
      cell: awsCliCell(c)
    },
    python('pytorch', 'PyTorch', pytorchSnippet(c))
  ];
}
