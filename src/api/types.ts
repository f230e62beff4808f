/**
 * Request and response shapes of the infinstor_jlab REST API.
 *
 * These interfaces mirror `infinstor_jlab/openapi.yaml` (components/schemas) one to one;
 * field names are the wire names. Times are UTC epoch milliseconds unless a field says
 * otherwise (`last_modified` and `created` are ISO 8601 strings).
 */

/** `GET infinstor/health`. */
export interface IHealth {
  version: string;
  index_schema_version: number;
}

/** `TimeSpec`: a spec resolved to absolute times (`GET timespec`, listings, diffs). */
export interface ITimeSpec {
  kind: 'snapshot' | 'slice';
  /** Inclusive slice start; null for snapshots. */
  start_ms: number | null;
  /** Snapshot time, or the inclusive slice end. */
  end_ms: number;
  /** A spec that parses back to exactly these times. */
  canonical: string;
  /** For people, e.g. "as of 2026-11-20 10:00:00 UTC". */
  display: string;
  /** The label the spec came from. */
  label: string | null;
  /**
   * The view ends after now (by the server's clock): it shows the bucket as
   * it is now. Absent from older servers.
   */
  future?: boolean;
}

/**
 * `BucketStatus`: a bucket in the snapshot index. The sidebar shows only tracked ones as such:
 * one whose tracking stopped without forgetting (`tracked: false`) is offered for tracking.
 */
export interface ITrackedBucket {
  name: string;
  tracked: true;
  tracked_ms: number | null;
  versioning: string | null;
  last_sync_ms: number | null;
  version_count: number;
  first_ms: number | null;
  last_ms: number | null;
  sync_in_progress: boolean;
  events: boolean;
  last_event_ms: number | null;
  lag_ms: number | null;
  events_applied: number;
  malformed_events: number;
  last_error: string | null;
  pending_messages: number | null;
  sync_job: string | null;
  list_error?: string;
  versioning_before?: 'Enabled' | 'Suspended' | 'Disabled';
}

/** `UntrackedBucket`: a bucket the credentials can see that is not in the index. */
export interface IUntrackedBucket {
  name: string;
  tracked: false;
  list_error?: string;
}

export type IBucket = ITrackedBucket | IUntrackedBucket;

/** `BucketList`. */
export interface IBucketList {
  buckets: IBucket[];
}

/** `TrackRequest`. */
export interface ITrackRequest {
  /** Consent to enable S3 versioning (required when it is not already on). */
  enable_versioning?: boolean;
  /** Also route the bucket's S3 events to an SQS queue the server polls. */
  events?: boolean;
}

/** `TrackResult`. */
export interface ITrackResult extends ITrackedBucket {
  versioning_before: 'Enabled' | 'Suspended' | 'Disabled';
  sync_job: string;
}

/** `SyncRequest`. */
export interface ISyncRequest {
  full?: boolean;
}

/** `SyncJob`. */
export interface ISyncJob {
  id: string;
  bucket: string;
  full: boolean;
  state: 'running' | 'done' | 'error';
  done: boolean;
  error: string | null;
  started_ms: number;
  finished_ms: number | null;
  warnings: string[];
  versions_seen: number;
  versions_written: number;
  pages: number;
  /** Versions seen per second. */
  rate: number;
  resumed_after: string | null;
  /** Key-range partitions of a parallel pass listed so far (0 of 0 for one stream). */
  partitions_done?: number;
  partitions_total?: number;
}

/** `ObjectSummary`. */
export interface IObjectSummary {
  key: string;
  version_id: string;
  size: number;
  etag: string;
  /** ISO 8601 UTC with milliseconds. */
  last_modified: string;
}

/** `ObjectVersion`. */
export interface IObjectVersion extends IObjectSummary {
  is_delete_marker: boolean;
  is_latest: boolean;
}

/** `ObjectsPage`. */
export interface IObjectsPage {
  objects: IObjectSummary[];
  prefixes: string[];
  /** Send back as `page_token` for the next page; null on the last. */
  next_token: string | null;
  bucket: string;
  prefix: string;
  delimiter: string | null;
  spec: ITimeSpec;
}

/** `ObjectMetadata`. */
export interface IObjectMetadata extends IObjectVersion {
  bucket: string;
  content_type: string;
  spec?: ITimeSpec;
}

/** `History`. */
export interface IHistory {
  bucket: string;
  key: string;
  versions: IObjectVersion[];
}

/** `KeyVersion`. */
export interface IKeyVersion {
  key: string;
  version_id: string;
}

/** A `modified` entry of `Diff`. */
export interface IModifiedEntry {
  key: string;
  from_version_id: string;
  to_version_id: string;
}

/** `Diff`. */
export interface IDiff {
  added: IKeyVersion[];
  deleted: IKeyVersion[];
  modified: IModifiedEntry[];
  counts: { added: number; deleted: number; modified: number };
  bucket: string;
  prefix: string;
  from: ITimeSpec;
  to: ITimeSpec;
}

/** `Timeline`: versions created and deleted per bin. */
export interface ITimeline {
  start_ms: number;
  end_ms: number;
  bin_ms: number;
  /** Bin i covers start_ms + i * bin_ms onwards. */
  created: number[];
  deleted: number[];
}

/** `LabelCreate`. */
export interface ILabelCreate {
  name: string;
  bucket: string;
  prefix?: string;
  /** Snapshot time spec (default now). */
  at?: string;
  /** Slice time spec (instead of `at`). */
  slice?: string;
  description?: string;
}

/** `Label`. */
export interface ILabel {
  name: string;
  bucket: string;
  prefix: string;
  kind: 'snapshot' | 'slice';
  start_ms: number | null;
  end_ms: number;
  /** Canonical time spec of the label's view. */
  spec: string;
  fingerprint: string;
  object_count: number;
  total_bytes: number;
  description: string;
  created_ms: number;
  created: string;
  /** Who made the label (Jupyter or OS user); empty for older labels. */
  created_by: string;
}

/** `LabelList`. */
export interface ILabelList {
  labels: ILabel[];
}

/** `VerifyRequest`. */
export interface IVerifyRequest {
  check_s3?: boolean;
}

/** `VerifyReport`. */
export interface IVerifyReport {
  name: string;
  ok: boolean;
  fingerprint: string;
  index_fingerprint: string;
  index_matches: boolean;
  object_count: number;
  index_object_count: number;
  s3_checked: number;
  s3_missing: { key: string; version_id: string; error: string }[];
  s3_changed: {
    key: string;
    version_id: string;
    etag: string;
    s3_etag: string;
  }[];
}

/**
 * Which view a listing, object or label request names: at most one of these
 * (none means now). These are the `at`, `slice` and `label` query parameters.
 */
export interface IViewParams {
  at?: string;
  slice?: string;
  label?: string;
}

/** Query of `GET buckets/{bucket}/objects`. */
export interface IListObjectsRequest extends IViewParams {
  prefix?: string;
  /** Default "/"; empty lists recursively. */
  delimiter?: string;
  max_keys?: number;
  /** The `next_token` of the previous page. */
  page_token?: string;
  start_after?: string;
}

/** Query of `GET buckets/{bucket}/object` (besides `download` / `preview`). */
export interface IObjectRequest extends IViewParams {
  key: string;
  version_id?: string;
}

/** Query of `GET buckets/{bucket}/diff`. */
export interface IDiffRequest {
  prefix?: string;
  from: string;
  to: string;
}

/** Query of `GET buckets/{bucket}/timeline`. */
export interface ITimelineRequest {
  prefix?: string;
  from?: string;
  to?: string;
  bins?: number;
}

/**
 * What `POST downloads` answers: a single-use link (valid for a minute) that
 * downloads one version, so the download URL carries no Jupyter token.
 */
export interface IDownloadTicket {
  ticket: string;
  /** The link's path on the server (`<base_url>infinstor/downloads/<ticket>`). */
  url: string;
  /** When the link stops working (UTC epoch ms). */
  expires_ms: number;
  bucket: string;
  key: string;
  version_id: string;
  size: number;
}

/** What `GET object?preview=1` gives: the bytes and the headers that describe them. */
export interface IPreview {
  blob: Blob;
  contentType: string;
  /** `X-Infinstor-Truncated`: only the start of the object is here. */
  truncated: boolean;
  /** `X-Infinstor-Version-Id`. */
  versionId: string | null;
}

// -- transforms (issue 6) ------------------------------------------------------------------

/** One place runs can go (`GET executors`). */
export interface IExecutorInfo {
  name: 'local' | 'spark' | 'emr' | string;
  /** For people: "Local", "Spark", "Amazon EMR". */
  title: string;
  available: boolean;
  /** Why it is unavailable (or what it runs on). */
  detail: string | null;
}

/** `GET executors`: the run dialog's choices and defaults. */
export interface IExecutors {
  executors: IExecutorInfo[];
  default_executor: string;
  /** `InfinstorApp.transform_output_uri`; '' when none is configured. */
  default_output_uri: string;
  /** '' when no MLflow UI is configured. */
  mlflow_ui_url: string;
  /** The MLflow tracking store runs record their lineage in. */
  tracking: ITrackingStatus;
}

/** Whether MLflow can use its tracking store (`GET executors`). */
export interface ITrackingStatus {
  available: boolean;
  /** The tracking URI without credentials; a local store shows only its file name. */
  store: string;
  /** MLflow's explanation and what to set, when it cannot (else null). */
  detail: string | null;
}

/** A stored revision of a transform (`Rev`; `code` only where a route sends it). */
export interface ITransformRevision {
  name: string;
  /** 1, 2, ... */
  revision: number;
  sha256: string;
  /** e.g. `infin_transform_one_object`, or "script". */
  entry_point: string;
  author: string;
  description: string;
  created_ms: number;
  code?: string;
}

/** An entry of `GET transforms`. */
export interface ITransformSummary {
  name: string;
  latest: ITransformRevision;
  /** Newest first. */
  revisions: ITransformRevision[];
}

/** `GET transforms`. */
export interface ITransformList {
  transforms: ITransformSummary[];
}

/** `GET transforms/{name}`: revisions with their code, newest first. */
export interface ITransformDetail {
  name: string;
  revisions: ITransformRevision[];
}

/** `POST transforms/check`: the cleaned cell and its entry point (nothing stored). */
export interface ITransformCheck {
  code: string;
  sha256: string;
  entry_point: string;
}

/** Body of `POST transforms`. */
export interface ITransformCreate {
  name: string;
  source: string;
  description?: string;
}

/** The sidebar's view (or a typed bucket/prefix) at a time: `{"type": "view"}`. */
export interface IViewInput {
  type: 'view';
  bucket: string;
  prefix: string;
  at?: string;
  slice?: string;
}

/** A label's pinned view. */
export interface ILabelInput {
  type: 'label';
  label: string;
}

/** The original InfinStor snapshot / slice forms. */
export interface ISnapInput {
  type: 'infinsnap' | 'infinslice';
  bucketname: string;
  prefix: string;
  time_spec: string;
}

/** The artifacts of an MLflow run. */
export interface IMlflowArtifactsInput {
  type: 'mlflow-run-artifacts';
  run_id: string;
}

/** A transform that reads nothing. */
export interface INoInput {
  type: 'no-input-data';
}

/** `Input` of a run. */
export type IRunInput =
  IViewInput | ILabelInput | ISnapInput | IMlflowArtifactsInput | INoInput;

export type IRunState =
  'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Body of `POST runs`. */
export interface IRunCreate {
  transform: string;
  /** Default: the latest revision. */
  revision?: number;
  input: IRunInput;
  executor: string;
  /** Default: `default_output_uri`. */
  output_uri?: string;
  kwargs?: { [key: string]: unknown };
  requirements?: string[];
  /** A label created over the output after success. */
  label_output?: string;
}

/** Executor details of a run (EMR ids, the local process). */
export interface IRunDetails {
  cluster_id?: string;
  step_id?: string;
  emr_state?: string;
  log_location?: string;
  pid?: number;
  [key: string]: unknown;
}

/** `Run`: a transform run (its id is the MLflow run id). */
export interface IRun {
  id: string;
  transform: string;
  revision: number;
  executor: string;
  input_spec: IRunInput;
  /** `s3://bucket/prefix/<run id>/`. */
  output_uri: string;
  kwargs: { [key: string]: unknown };
  requirements: string[];
  state: IRunState;
  created_ms: number;
  finished_ms: number | null;
  /** Objects done / in the manifest. */
  done: number;
  total: number;
  manifest_fingerprint: string | null;
  mlflow_run_id: string;
  mlflow_experiment_id: string;
  /** Only when the server knows the MLflow UI's URL. */
  mlflow_url: string | null;
  error: string | null;
  details: IRunDetails;
  label_output: string | null;
  /** The label over the output, once created. */
  output_label: string | null;
  label_error: string | null;
  /** `_FAILED.json` or `_CANCELLED.json` once written into a failed or cancelled run's
   * output (next to its partial outputs). */
  output_marker?: string | null;
}

/** `GET runs`. */
export interface IRunList {
  runs: IRun[];
}

/** `GET runs/{id}/log`. */
export interface IRunLog {
  log: string;
}

// -- the S3 endpoint and view credentials ---------------------------------------------------

/** `GET endpoint`: where this server's S3 endpoint listens. */
export interface IEndpointState {
  running: boolean;
  /** InfinstorApp.endpoint_enabled. */
  enabled: boolean;
  /** e.g. http://127.0.0.1:41234; null when it is off or did not start. */
  url: string | null;
  region: string | null;
  /** Why it is not running, if it should be. */
  error: string | null;
}

/** The view a credential reaches, resolved to absolute times when it was issued. */
export interface ICredentialView {
  /** null: every bucket in the index. */
  bucket: string | null;
  prefix: string;
  kind: 'snapshot' | 'slice';
  start_ms: number | null;
  end_ms: number;
  /** The view as given (label:/x, run:/id, tm...). */
  spec: string;
  canonical: string;
  display: string;
  label: string | null;
}

/** A view credential as listed (never with its secret). */
export interface IViewCredential {
  aws_access_key_id: string;
  view: ICredentialView;
  created: string;
  created_ms: number;
  expires: string | null;
  expires_ms: number | null;
  revoked_ms: number | null;
  state: 'active' | 'expired' | 'revoked';
  /** The first 16 hex digits of the secret's SHA-256. */
  secret_fingerprint: string;
  description: string;
}

/** `GET endpoint/credentials`. */
export interface IViewCredentialList {
  credentials: IViewCredential[];
}

/** Body of `POST endpoint/credentials`. */
export interface IViewCredentialCreate {
  /** A time spec, A/B, label:/NAME or run:/RUN_ID. */
  view: string;
  /** Only this bucket (default every indexed bucket; a label's own). */
  bucket?: string;
  /** Only keys under this prefix (needs bucket, or a label). */
  prefix?: string;
  /** Lifetime: 90s, 15m, 12h, 7d (default), 2w; at most 366 days. */
  expires?: string;
  description?: string;
}

/** `POST endpoint/credentials` (201): the credential with its secret, shown once. */
export interface IIssuedViewCredential {
  endpoint_url: string;
  aws_access_key_id: string;
  aws_secret_access_key: string;
  region: string;
  view: ICredentialView;
  expires: string | null;
  credential: IViewCredential;
}
/** `RestoreAction`: one key a restore brings back, reverts or deletes. */
export interface IRestoreAction {
  key: string;
  change: 'bring back' | 'revert' | 'delete';
  /** The current version now (null when the key is absent). */
  live_version_id: string | null;
  /** The version copied back (copies only). */
  version_id?: string;
  size?: number;
}

/** `RestoreSkip`: a key a restore leaves alone, and why. */
export interface IRestoreSkip {
  key: string;
  reason: 'changed' | 'archived' | 'gone';
  message: string;
}

/** `RestorePlan`: what restoring a folder to a time would do now. */
export interface IRestorePlan {
  bucket: string;
  prefix: string;
  to: ITimeSpec;
  copy: IRestoreAction[];
  delete: IRestoreAction[];
  unchanged: number;
  skipped: IRestoreSkip[];
  forced: string[];
  bytes_to_copy: number;
  fingerprint: string;
  /** The name the user types to confirm. */
  confirm?: string;
}

/** `RestorePlanRequest`. */
export interface IRestorePlanRequest {
  prefix: string;
  to: string;
  force?: boolean;
}

/** `RestoreRequest`. */
export interface IRestoreRequest extends IRestorePlanRequest {
  confirm: string;
  expect?: string;
  parallel?: number;
}

/** `GetRequest`: a view into a folder of the Jupyter file tree. */
export interface IGetRequest extends IViewParams {
  path: string;
  prefix?: string;
}

/** `Job`: a restore or a download started by this server. */
export interface IJob {
  id: string;
  kind: 'restore' | 'get';
  state: 'running' | 'done' | 'error';
  finished: boolean;
  done: number;
  total: number;
  bytes: number;
  started_ms: number;
  finished_ms: number | null;
  result: { [name: string]: any } | null;
  error: string | null;
}

// -- pipelines ------------------------------------------------------------------------------

/** A step's input when it reads other steps' outputs (`"step"` is normalised to `"steps"`). */
export interface IStepsInput {
  type: 'step';
  step?: string;
  steps?: string[];
}

/** A step's input: a view as `POST runs` takes it, or other steps' outputs. */
export type IPipelineStepInput = IRunInput | IStepsInput;

/** `PipelineStepDefinition`: a step as it is saved. */
export interface IPipelineStepDefinition {
  /** 1-64 letters, digits, '_' or '-'. */
  name: string;
  /** A saved transform's name. */
  transform: string;
  /** Omitted: the latest revision when the run starts. */
  revision?: number | null;
  kwargs?: { [key: string]: unknown };
  /** Default local. */
  executor?: string;
  /** s3://BUCKET/PREFIX/ of a tracked bucket; omitted: the server's default. */
  output_uri?: string | null;
  requirements?: string[];
  input: IPipelineStepInput;
}

/** `PipelineDefinition`: the body of `POST pipelines`. */
export interface IPipelineDefinition {
  /** 1-128 letters, digits, '.', '_' or '-'. */
  name: string;
  description?: string;
  steps: IPipelineStepDefinition[];
}

/** `POST pipelines` with a pasted pipeline file (YAML or JSON, as the CLI reads it). */
export interface IPipelineText {
  text: string;
}

/** `PipelineStep`: a saved step. */
export interface IPipelineStep {
  name: string;
  transform: string;
  revision: number | null;
  kwargs: { [key: string]: unknown };
  executor: string;
  output_uri: string | null;
  requirements: string[];
  /** A view spec, or `{"type": "step", "steps": [...]}`. */
  input: IPipelineStepInput;
}

/** `Pipeline`. */
export interface IPipeline {
  name: string;
  description: string;
  author: string;
  created_ms: number;
  updated_ms: number;
  steps: IPipelineStep[];
}

/** An entry of `GET pipelines`: the pipeline and its latest run. */
export interface IPipelineSummary extends IPipeline {
  last_run: IPipelineRun | null;
}

/** `GET pipelines`. */
export interface IPipelineList {
  pipelines: IPipelineSummary[];
}

export type IPipelineStepState =
  | 'waiting'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'skipped'
  | 'cached';

export type IPipelineRunState =
  'running' | 'succeeded' | 'failed' | 'cancelled';

/** `PipelineStepRun`: a step of a pipeline run. */
export interface IPipelineStepRun {
  step: string;
  state: IPipelineStepState;
  /** The step's transform run (`GET runs/{id}`) and MLflow child run. */
  run_id: string | null;
  /** The run whose output a cached step reused. */
  cached_from: string | null;
  cache_key: string | null;
  output_uri: string | null;
  /** `pipeline-<run id>-<step>`, or the reused run's label. */
  output_label: string | null;
  /** Why it failed or was skipped. */
  error: string | null;
  started_ms: number | null;
  finished_ms: number | null;
  done: number;
  total: number;
  /** MLflow UI link to the run (the reused one when cached). */
  run_url: string | null;
}

/** `PipelineRun`. */
export interface IPipelineRun {
  id: string;
  pipeline: string;
  /** The pipeline as it was when the run started. */
  definition: IPipeline;
  state: IPipelineRunState;
  created_ms: number;
  finished_ms: number | null;
  cache: boolean;
  steps: IPipelineStepRun[];
  /** Which step failed and why. */
  error: string | null;
  mlflow_experiment_id: string | null;
  mlflow_run_id: string;
  mlflow_url: string | null;
  heartbeat_ms: number;
  author: string;
  driver: string;
  cancel_requested: boolean;
}

/** `GET pipelines/{name}/runs`: newest first. */
export interface IPipelineRunList {
  runs: IPipelineRun[];
}

/** Body of `POST pipelines/{name}/runs`. */
export interface IPipelineRunCreate {
  /** false runs every step even when its result is cached (default true). */
  cache?: boolean;
  /** Every step on this executor instead of each step's own. */
  executor?: string;
}

// -- schedules ------------------------------------------------------------------------------

/** `ScheduleRequest`: the body of `POST schedules`. */
export interface IScheduleCreate {
  name: string;
  /** A saved transform. */
  transform: string;
  revision?: number | null;
  /** A tracked bucket. */
  bucket: string;
  prefix?: string;
  /** Default incremental. */
  mode?: 'incremental' | 'snapshot';
  /** Five fields, UTC; or every_minutes. */
  cron?: string | null;
  every_minutes?: number | null;
  if_new_data?: boolean;
  executor?: string;
  output_uri?: string;
  /** A JSON object (or its text). */
  kwargs?: { [key: string]: unknown } | string;
  /** A list, or one per line. */
  requirements?: string[] | string;
  settle_s?: number;
  /** Time spec where the first window begins (default now). */
  start?: string | null;
}

export type IScheduleWindowState = 'running' | 'succeeded' | 'failed' | 'empty';

/** `ScheduleWindow`: one firing's slice, run and result. */
export interface IScheduleWindow {
  schedule: string;
  seq: number;
  /** First ms of the slice (both ends inclusive); snapshot mode: = end_ms. */
  start_ms: number;
  end_ms: number;
  state: IScheduleWindowState;
  run_id: string | null;
  objects: number;
  created_ms: number;
  finished_ms: number | null;
  error: string | null;
  /** How many windows from this start were tried. */
  attempt: number;
}

/** `Schedule`. */
export interface ISchedule {
  name: string;
  transform: string;
  bucket: string;
  prefix: string;
  mode: 'incremental' | 'snapshot';
  cron: string | null;
  every_minutes: number | null;
  if_new_data: boolean;
  executor: string;
  output_uri: string;
  kwargs: { [key: string]: unknown };
  requirements: string[];
  revision: number | null;
  start_ms: number;
  settle_s: number;
  paused: boolean;
  created_ms: number;
  created_by: string;
  /** Next firing (epoch ms). */
  next_ms: number;
  /** The trigger in words (cron 0 2 * * * (UTC), every 5 min if new data). */
  trigger: string;
  /** The newest window, or null before the first firing. */
  last_window: IScheduleWindow | null;
}

/** `GET schedules`. */
export interface IScheduleList {
  schedules: ISchedule[];
}

/** `GET schedules/{name}`: the schedule and its windows, newest first. */
export interface IScheduleDetail extends ISchedule {
  windows: IScheduleWindow[];
}

/** `POST schedules/{name}/run` (202): the windows started. */
export interface IScheduleFired {
  windows: IScheduleWindow[];
}
