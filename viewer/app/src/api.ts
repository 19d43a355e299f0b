/**
 * The review server's JSON routes (viewer/server/api-types.ts is the contract), typed. Every
 * failure becomes an ApiRequestError carrying the server's { error, message } when it sent one.
 *
 * Signed in, every write carries the session's CSRF token (X-Flashslide-CSRF), and a 401 from any
 * route (the session ended: idle, signed out elsewhere, server restarted) is announced as
 * SIGNED_OUT_EVENT, on which the app shows its sign-in form.
 */
import type {
  ApiError, LoginRequest, RegionList, Review, SessionInfo, SlideDetail, SubmitResponse, VerdictInput, Worklist,
} from '../../server/api-types.js';
import type { PaperSize, ReportFormat } from '../../../worker/report/report-options.js';

export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    /** The server's machine-readable code ('conflict', 'no-queue', ...), or 'network'/'http'. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

const enc = encodeURIComponent;

/** Dispatched on window when the server answers 401 to a page that was signed in. */
export const SIGNED_OUT_EVENT = 'flashslide:signed-out';
const CSRF_HEADER = 'x-flashslide-csrf';
let csrfToken: string | null = null;

/** Remembers the session's CSRF token (null: none) for the writes that follow. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

function writeHeaders(): Record<string, string> {
  return csrfToken === null ? {} : { [CSRF_HEADER]: csrfToken };
}

function announceSignedOut(status: number): void {
  if (status === 401 && csrfToken !== null) window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
}

async function failure(res: Response): Promise<ApiRequestError> {
  let body: Partial<ApiError> | null = null;
  try {
    body = (await res.json()) as Partial<ApiError>;
  } catch {
    // not JSON: fall through to the status line
  }
  const message = typeof body?.message === 'string' && body.message ? body.message : `${res.status} ${res.statusText || 'error'} from ${new URL(res.url, location.href).pathname}`;
  return new ApiRequestError(res.status, typeof body?.error === 'string' ? body.error : 'http', message);
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  const write = init?.method !== undefined && init.method !== 'GET' && init.method !== 'HEAD';
  try {
    res = await fetch(path, { ...init, headers: { accept: 'application/json', ...(write ? writeHeaders() : {}), ...init?.headers } });
  } catch (err) {
    throw new ApiRequestError(0, 'network', `the review server does not answer (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!res.ok) {
    announceSignedOut(res.status);
    throw await failure(res);
  }
  return (await res.json()) as T;
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export const api = {
  /** Whether the server wants a sign-in, and who is signed in. */
  session: (): Promise<SessionInfo> => request('/api/session', { cache: 'no-store' }),
  login: (body: LoginRequest): Promise<SessionInfo> => request('/api/login', json(body)),
  logout: (): Promise<SessionInfo> => request('/api/logout', json({})),
  worklist: (): Promise<Worklist> => request('/api/worklist'),
  slide: (id: string): Promise<SlideDetail> => request(`/api/slides/${enc(id)}`),
  regions: (id: string): Promise<RegionList> => request(`/api/slides/${enc(id)}/regions`),
  review: (id: string): Promise<Review> => request(`/api/slides/${enc(id)}/review`, { cache: 'no-store' }),
  thumbnailUrl: (id: string): string => `/api/slides/${enc(id)}/thumbnail.jpg`,

  // Report downloads are plain links (the browser saves the attachment), so these build URLs.
  /** One slide's report; `paper` only matters to the PDF. */
  reportUrl: (id: string, format: ReportFormat, paper: PaperSize): string =>
    `/api/slides/${enc(id)}/report.${format}${format === 'pdf' ? `?paper=${paper}` : ''}`,
  /** A ZIP of one report per slide plus batch.csv/json; without ids, every slide of the worklist. */
  batchZipUrl: (format: ReportFormat, paper: PaperSize, ids?: readonly string[]): string =>
    `/api/reports/batch.zip?${new URLSearchParams({ format, ...(format === 'pdf' ? { paper } : {}), ...(ids ? { ids: ids.join(',') } : {}) }).toString()}`,
  /** The batch summary alone (one row per slide). */
  batchSummaryUrl: (format: 'csv' | 'json', ids?: readonly string[]): string =>
    `/api/reports/batch.${format}${ids ? `?ids=${ids.join(',')}` : ''}`,

  /** Records a verdict against review `version`; a 409 (someone else wrote first) throws code 'conflict'. */
  putVerdict: (id: string, regionId: string, version: number, input: VerdictInput): Promise<Review> =>
    request(`/api/slides/${enc(id)}/review/regions/${enc(regionId)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'if-match': `"${version}"` },
      body: JSON.stringify(input),
    }),

  submit: (path: string): Promise<SubmitResponse> => request('/api/submit', json({ path })),

  /** Streams a file to PUT /api/upload (XHR for the progress events fetch lacks). */
  upload(file: File, onProgress?: (fraction: number) => void): Promise<SubmitResponse> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', `/api/upload?name=${enc(file.name)}`);
      xhr.setRequestHeader('content-type', 'application/octet-stream');
      xhr.setRequestHeader('accept', 'application/json');
      for (const [name, value] of Object.entries(writeHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
      };
      xhr.onerror = () => reject(new ApiRequestError(0, 'network', 'the upload was cut off (network error)'));
      xhr.onload = () => {
        let body: unknown = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // not JSON
        }
        if (xhr.status >= 200 && xhr.status < 300) return resolve(body as SubmitResponse);
        announceSignedOut(xhr.status);
        const err = body as Partial<ApiError> | null;
        reject(new ApiRequestError(xhr.status, typeof err?.error === 'string' ? err.error : 'http', typeof err?.message === 'string' ? err.message : `upload failed: ${xhr.status} ${xhr.statusText}`));
      };
      xhr.send(file);
    });
  },
};

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
