import { URLExt } from '@jupyterlab/coreutils';

import { ServerConnection } from '@jupyterlab/services';

/**
 * The URL of an endpoint of the server extension (`<base_url>/infinstor/<endPoint>`).
 */
export function apiUrl(
  endPoint: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(settings.baseUrl, 'infinstor', endPoint);
}

/**
 * Turn a failed response into the error a caller sees: a
 * `ServerConnection.ResponseError` whose message is the server's sentence
 * (`{"message": ...}`), or the body text, or the HTTP status line.
 */
async function responseError(
  response: Response
): Promise<ServerConnection.ResponseError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    text = '';
  }
  let message = '';
  if (text.length > 0) {
    try {
      const body = JSON.parse(text);
      message = typeof body?.message === 'string' ? body.message : text;
    } catch {
      message = text;
    }
  }
  if (!message) {
    message = `${response.status} ${response.statusText}`.trim();
  }
  return new ServerConnection.ResponseError(response, message);
}

/**
 * Make a request to the server extension and return the raw response
 * (for bodies that are not JSON: previews). A non-2xx answer throws a
 * `ServerConnection.ResponseError` carrying the server's message.
 */
export async function requestRaw(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Response> {
  const requestUrl = apiUrl(endPoint, settings);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(requestUrl, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as any);
  }
  if (!response.ok) {
    throw await responseError(response);
  }
  return response;
}

/**
 * Call the server extension
 *
 * @param endPoint API REST end point for the extension
 * @param init Initial values for the request
 * @param settings Server connection settings; defaults to the page's settings
 * @returns The response body interpreted as JSON (undefined for an empty body)
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const response = await requestRaw(endPoint, init, settings);
  const data = await response.text();
  if (data.length === 0) {
    return undefined as T;
  }
  try {
    return JSON.parse(data) as T;
  } catch {
    throw new ServerConnection.ResponseError(
      response,
      'The infinstor_jlab server extension answered with something that is not JSON.'
    );
  }
}
