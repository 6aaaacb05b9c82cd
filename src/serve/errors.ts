/**
 * Errors as OpenAI-compatible clients expect them: a 4xx or 5xx status and the body
 * `{error: {message, type, param, code}}`, so the `openai` client (and others) raise their typed errors
 * with the server's message.
 */

export type ApiErrorType = 'invalid_request_error' | 'not_found_error' | 'server_error';

export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: ApiErrorType = status === 404 ? 'not_found_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }

  body(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A request for something the server does not do, named by the field that asks for it. */
export function unsupported(param: string, why: string): ApiError {
  return new ApiError(400, `${param}: ${why}`, param, 'unsupported_parameter');
}
