/**
 * The one typed client of the infinstor_jlab REST API (infinstor_jlab/openapi.yaml).
 *
 * Every request of the front end goes through here, and from here through
 * `requestAPI` / `requestRaw` (src/api/request.ts). Errors are
 * `ServerConnection.ResponseError`s whose `message` is the server's sentence.
 */
import { ServerConnection } from '@jupyterlab/services';

import { apiUrl, requestAPI, requestRaw } from './request';
import {
  IBucketList,
  IDiff,
  IDiffRequest,
  IDownloadTicket,
  IEndpointState,
  IExecutors,
  IGetRequest,
  IHealth,
  IHistory,
  IIssuedViewCredential,
  IJob,
  ILabel,
  ILabelCreate,
  ILabelList,
  IListObjectsRequest,
  IObjectMetadata,
  IObjectRequest,
  IObjectsPage,
  IPipeline,
  IPipelineDefinition,
  IPipelineList,
  IPipelineRun,
  IPipelineRunCreate,
  IPipelineRunList,
  IPipelineText,
  IPreview,
  IRestorePlan,
  IRestorePlanRequest,
  IRestoreRequest,
  IRun,
  IRunCreate,
  IRunList,
  IRunLog,
  ISchedule,
  IScheduleCreate,
  IScheduleDetail,
  IScheduleFired,
  IScheduleList,
  ISyncJob,
  ISyncRequest,
  ITimeSpec,
  ITimeline,
  ITimelineRequest,
  ITrackRequest,
  ITrackResult,
  ITransformCheck,
  ITransformCreate,
  ITransformDetail,
  ITransformList,
  ITransformRevision,
  IVerifyReport,
  IVerifyRequest,
  IViewCredential,
  IViewCredentialCreate,
  IViewCredentialList
} from './types';

type QueryValue = string | number | boolean | null | undefined;

/**
 * `?a=1&b=x%2Fy` from the defined values of `params`, in the given order
 * ('' when none). Empty strings are kept (an empty prefix is a prefix).
 */
export function queryString(params: { [name: string]: QueryValue }): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) {
      continue;
    }
    const text =
      typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(text)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function jsonInit(method: string, body?: unknown): RequestInit {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  return init;
}

/**
 * Client of the REST API of one Jupyter server.
 */
export class InfinstorClient {
  constructor(options: InfinstorClient.IOptions = {}) {
    this.serverSettings =
      options.serverSettings ?? ServerConnection.makeSettings();
  }

  /** The connection settings (base URL, token, fetch) of the server. */
  readonly serverSettings: ServerConnection.ISettings;

  /** `GET health`. */
  health(): Promise<IHealth> {
    return this._get<IHealth>('health');
  }

  /** `GET buckets`. */
  listBuckets(): Promise<IBucketList> {
    return this._get<IBucketList>('buckets');
  }

  /** `POST buckets/{bucket}/track`. */
  track(bucket: string, body: ITrackRequest = {}): Promise<ITrackResult> {
    return this._send<ITrackResult>(
      `buckets/${segment(bucket)}/track`,
      'POST',
      body
    );
  }

  /** `DELETE buckets/{bucket}/track`. */
  async untrack(bucket: string, forget = false): Promise<void> {
    await this._send<void>(
      `buckets/${segment(bucket)}/track${queryString({ forget: forget || undefined })}`,
      'DELETE'
    );
  }

  /** `POST buckets/{bucket}/sync`. */
  sync(bucket: string, body: ISyncRequest = {}): Promise<ISyncJob> {
    return this._send<ISyncJob>(
      `buckets/${segment(bucket)}/sync`,
      'POST',
      body
    );
  }

  /** `GET syncs/{job_id}`. */
  syncJob(jobId: string): Promise<ISyncJob> {
    return this._get<ISyncJob>(`syncs/${segment(jobId)}`);
  }

  /** `GET buckets/{bucket}/objects`: one page of a snapshot or slice. */
  listObjects(
    bucket: string,
    request: IListObjectsRequest = {}
  ): Promise<IObjectsPage> {
    const query = queryString({
      prefix: request.prefix,
      delimiter: request.delimiter,
      at: request.at,
      slice: request.slice,
      label: request.label,
      max_keys: request.max_keys,
      // Not `token`: Jupyter reads ?token= as its own authentication token.
      page_token: request.page_token,
      start_after: request.start_after
    });
    return this._get<IObjectsPage>(
      `buckets/${segment(bucket)}/objects${query}`
    );
  }

  /** `GET buckets/{bucket}/object`: metadata of the version a view names. */
  objectMetadata(
    bucket: string,
    request: IObjectRequest
  ): Promise<IObjectMetadata> {
    return this._get<IObjectMetadata>(this._objectPath(bucket, request));
  }

  /**
   * `GET buckets/{bucket}/object?preview=1`: the start of the version's bytes,
   * with what the `X-Infinstor-*` headers say about them.
   */
  async preview(bucket: string, request: IObjectRequest): Promise<IPreview> {
    const response = await requestRaw(
      this._objectPath(bucket, request, { preview: '1' }),
      { method: 'GET' },
      this.serverSettings
    );
    const blob = await response.blob();
    const contentType =
      response.headers.get('Content-Type') ||
      blob.type ||
      'application/octet-stream';
    return {
      blob,
      contentType: contentType.split(';')[0].trim().toLowerCase(),
      truncated: response.headers.get('X-Infinstor-Truncated') === 'true',
      versionId: response.headers.get('X-Infinstor-Version-Id')
    };
  }

  /**
   * `POST downloads`: a single-use link, valid for a minute, that downloads
   * exactly the version a view names, for an anchor or a new window.
   *
   * A browser navigation sends the login cookie but no Authorization header.
   * Instead of putting the server token into the URL (where the server log
   * would record it whenever the download fails), this authenticated request
   * gets a ticket, and the link carries only that. The server streams the
   * bytes, so large objects never sit in the browser's memory. An unknown key
   * or version fails here, with the server's sentence.
   */
  async downloadUrl(bucket: string, request: IObjectRequest): Promise<string> {
    const ticket = await this.createDownload(bucket, request);
    return apiUrl(`downloads/${segment(ticket.ticket)}`, this.serverSettings);
  }

  /** `POST downloads`: the ticket of a single-use download link. */
  createDownload(
    bucket: string,
    request: IObjectRequest
  ): Promise<IDownloadTicket> {
    return this._send<IDownloadTicket>('downloads', 'POST', {
      bucket,
      key: request.key,
      at: request.at,
      slice: request.slice,
      label: request.label,
      version_id: request.version_id
    });
  }

  /** `GET buckets/{bucket}/history`: every version of a key, newest first. */
  history(bucket: string, key: string): Promise<IHistory> {
    return this._get<IHistory>(
      `buckets/${segment(bucket)}/history${queryString({ key })}`
    );
  }

  /** `GET buckets/{bucket}/diff`. */
  diff(bucket: string, request: IDiffRequest): Promise<IDiff> {
    const query = queryString({
      prefix: request.prefix,
      from: request.from,
      to: request.to
    });
    return this._get<IDiff>(`buckets/${segment(bucket)}/diff${query}`);
  }

  /** `GET buckets/{bucket}/timeline`. */
  timeline(bucket: string, request: ITimelineRequest = {}): Promise<ITimeline> {
    const query = queryString({
      prefix: request.prefix,
      from: request.from,
      to: request.to,
      bins: request.bins
    });
    return this._get<ITimeline>(`buckets/${segment(bucket)}/timeline${query}`);
  }

  /** `GET labels`. */
  listLabels(bucket?: string): Promise<ILabelList> {
    return this._get<ILabelList>(`labels${queryString({ bucket })}`);
  }

  /** `POST labels`. */
  createLabel(body: ILabelCreate): Promise<ILabel> {
    return this._send<ILabel>('labels', 'POST', body);
  }

  /** `GET labels/{name}`. */
  getLabel(name: string): Promise<ILabel> {
    return this._get<ILabel>(`labels/${segment(name)}`);
  }

  /** `DELETE labels/{name}`. */
  async deleteLabel(name: string): Promise<void> {
    await this._send<void>(`labels/${segment(name)}`, 'DELETE');
  }

  /** `POST labels/{name}/verify`. */
  verifyLabel(name: string, body: IVerifyRequest = {}): Promise<IVerifyReport> {
    return this._send<IVerifyReport>(
      `labels/${segment(name)}/verify`,
      'POST',
      body
    );
  }

  /** `GET timespec`: parse a time spec exactly as the other routes do. */
  timespec(spec: string): Promise<ITimeSpec> {
    return this._get<ITimeSpec>(`timespec${queryString({ spec })}`);
  }

  // -- transforms and runs ------------------------------------------------------------------

  /** `GET executors`: where runs can go, the default output location. */
  executors(): Promise<IExecutors> {
    return this._get<IExecutors>('executors');
  }

  /** `GET transforms`: every transform with its revisions (without code). */
  listTransforms(): Promise<ITransformList> {
    return this._get<ITransformList>('transforms');
  }

  /** `POST transforms/check`: clean a cell and find its entry point (nothing stored). */
  checkTransform(source: string): Promise<ITransformCheck> {
    return this._send<ITransformCheck>('transforms/check', 'POST', { source });
  }

  /**
   * `POST transforms`: store the cell as a new revision (or get the latest one
   * when its cleaned code is the same).
   */
  createTransform(body: ITransformCreate): Promise<ITransformRevision> {
    return this._send<ITransformRevision>('transforms', 'POST', body);
  }

  /** `GET transforms/{name}`: revisions with their code, newest first. */
  getTransform(name: string): Promise<ITransformDetail> {
    return this._get<ITransformDetail>(`transforms/${segment(name)}`);
  }

  /** `DELETE transforms/{name}` (its runs are kept). */
  async deleteTransform(name: string): Promise<void> {
    await this._send<void>(`transforms/${segment(name)}`, 'DELETE');
  }

  /** `GET runs`, newest first (only one transform's when given). */
  listRuns(transform?: string): Promise<IRunList> {
    return this._get<IRunList>(`runs${queryString({ transform })}`);
  }

  /** `POST runs`: start a run. */
  createRun(body: IRunCreate): Promise<IRun> {
    return this._send<IRun>('runs', 'POST', body);
  }

  /** `GET runs/{id}`. */
  getRun(id: string): Promise<IRun> {
    return this._get<IRun>(`runs/${segment(id)}`);
  }

  /** `POST runs/{id}/cancel`. */
  cancelRun(id: string): Promise<IRun> {
    return this._send<IRun>(`runs/${segment(id)}/cancel`, 'POST', {});
  }

  /** `POST buckets/{bucket}/restore/plan`: what a restore would do now. */
  restorePlan(
    bucket: string,
    body: IRestorePlanRequest
  ): Promise<IRestorePlan> {
    return this._send<IRestorePlan>(
      `buckets/${segment(bucket)}/restore/plan`,
      'POST',
      body
    );
  }

  /** `POST buckets/{bucket}/restore`: start a restore (a job). */
  startRestore(bucket: string, body: IRestoreRequest): Promise<IJob> {
    return this._send<IJob>(`buckets/${segment(bucket)}/restore`, 'POST', body);
  }

  /** `POST buckets/{bucket}/get`: download a view into the Jupyter file tree (a job). */
  startGet(bucket: string, body: IGetRequest): Promise<IJob> {
    return this._send<IJob>(`buckets/${segment(bucket)}/get`, 'POST', body);
  }

  /** `GET jobs/{job_id}`. */
  job(jobId: string): Promise<IJob> {
    return this._get<IJob>(`jobs/${segment(jobId)}`);
  }

  /** `GET runs/{id}/log`: the last `lines` lines of the driver's log. */
  runLog(id: string, lines?: number): Promise<IRunLog> {
    return this._get<IRunLog>(
      `runs/${segment(id)}/log${queryString({ lines })}`
    );
  }

  // -- the S3 endpoint ----------------------------------------------------------------------

  /** `GET endpoint`: where this server's S3 endpoint listens (null url when off). */
  endpoint(): Promise<IEndpointState> {
    return this._get<IEndpointState>('endpoint');
  }

  /** `GET endpoint/credentials`: every view credential, newest first (no secrets). */
  listViewCredentials(): Promise<IViewCredentialList> {
    return this._get<IViewCredentialList>('endpoint/credentials');
  }

  /**
   * `POST endpoint/credentials`: an access key id and secret that the endpoint
   * accepts for exactly one view. The secret is in this answer only.
   */
  issueViewCredential(
    body: IViewCredentialCreate
  ): Promise<IIssuedViewCredential> {
    return this._send<IIssuedViewCredential>(
      'endpoint/credentials',
      'POST',
      body
    );
  }

  /** `DELETE endpoint/credentials/{key_id}`: refused from the next request on. */
  revokeViewCredential(keyId: string): Promise<IViewCredential> {
    return this._send<IViewCredential>(
      `endpoint/credentials/${segment(keyId)}`,
      'DELETE'
    );
  }

  // -- pipelines ----------------------------------------------------------------------------

  /** `GET pipelines`: every pipeline with its steps and latest run, in name order. */
  listPipelines(): Promise<IPipelineList> {
    return this._get<IPipelineList>('pipelines');
  }

  /**
   * `POST pipelines`: save a pipeline (a definition, or a pasted YAML/JSON file
   * as `{text}`); a pipeline of the same name is replaced. Checked first (400
   * with a sentence).
   */
  savePipeline(body: IPipelineDefinition | IPipelineText): Promise<IPipeline> {
    return this._send<IPipeline>('pipelines', 'POST', body);
  }

  /** `GET pipelines/{name}`. */
  getPipeline(name: string): Promise<IPipeline> {
    return this._get<IPipeline>(`pipelines/${segment(name)}`);
  }

  /** `DELETE pipelines/{name}` (its runs, outputs and labels stay). */
  async deletePipeline(name: string): Promise<void> {
    await this._send<void>(`pipelines/${segment(name)}`, 'DELETE');
  }

  /** `GET pipelines/{name}/runs`, newest first. */
  listPipelineRuns(name: string, limit?: number): Promise<IPipelineRunList> {
    return this._get<IPipelineRunList>(
      `pipelines/${segment(name)}/runs${queryString({ limit })}`
    );
  }

  /** `POST pipelines/{name}/runs`: start a run (its steps waiting). */
  startPipelineRun(
    name: string,
    body: IPipelineRunCreate = {}
  ): Promise<IPipelineRun> {
    return this._send<IPipelineRun>(
      `pipelines/${segment(name)}/runs`,
      'POST',
      body
    );
  }

  /** `GET pipelines/{name}/runs/{run_id}`: the run with each step's state. */
  getPipelineRun(name: string, runId: string): Promise<IPipelineRun> {
    return this._get<IPipelineRun>(
      `pipelines/${segment(name)}/runs/${segment(runId)}`
    );
  }

  /** `DELETE pipelines/{name}/runs/{run_id}`: cancel every step (202, the run). */
  cancelPipelineRun(name: string, runId: string): Promise<IPipelineRun> {
    return this._send<IPipelineRun>(
      `pipelines/${segment(name)}/runs/${segment(runId)}`,
      'DELETE'
    );
  }

  // -- schedules ----------------------------------------------------------------------------

  /** `GET schedules`: each with its trigger, next firing and last window. */
  listSchedules(): Promise<IScheduleList> {
    return this._get<IScheduleList>('schedules');
  }

  /** `POST schedules`: define a schedule of a saved transform. */
  createSchedule(body: IScheduleCreate): Promise<ISchedule> {
    return this._send<ISchedule>('schedules', 'POST', body);
  }

  /** `GET schedules/{name}`: with its windows, newest first. */
  getSchedule(name: string, windows?: number): Promise<IScheduleDetail> {
    return this._get<IScheduleDetail>(
      `schedules/${segment(name)}${queryString({ windows })}`
    );
  }

  /** `DELETE schedules/{name}` (its runs stay in MLflow). */
  async deleteSchedule(name: string): Promise<void> {
    await this._send<void>(`schedules/${segment(name)}`, 'DELETE');
  }

  /** `POST schedules/{name}/pause|resume`: the schedule. */
  setSchedulePaused(name: string, paused: boolean): Promise<ISchedule> {
    return this._send<ISchedule>(
      `schedules/${segment(name)}/${paused ? 'pause' : 'resume'}`,
      'POST',
      {}
    );
  }

  /** `POST schedules/{name}/run`: fire now; the windows started (none when nothing is new). */
  runSchedule(name: string): Promise<IScheduleFired> {
    return this._send<IScheduleFired>(
      `schedules/${segment(name)}/run`,
      'POST',
      {}
    );
  }

  private _objectPath(
    bucket: string,
    request: IObjectRequest,
    extra: { [name: string]: QueryValue } = {}
  ): string {
    const query = queryString({
      key: request.key,
      at: request.at,
      slice: request.slice,
      label: request.label,
      version_id: request.version_id,
      ...extra
    });
    return `buckets/${segment(bucket)}/object${query}`;
  }

  private _get<T>(path: string): Promise<T> {
    return requestAPI<T>(path, { method: 'GET' }, this.serverSettings);
  }

  private _send<T>(path: string, method: string, body?: unknown): Promise<T> {
    return requestAPI<T>(path, jsonInit(method, body), this.serverSettings);
  }
}

export namespace InfinstorClient {
  export interface IOptions {
    /** Defaults to the page's settings. */
    serverSettings?: ServerConnection.ISettings;
  }
}
