// Petrel's public API.
export { createServer, HttpServer } from './server/server.ts'
export type { Handler, ServerOptions, ListenOptions, ServerStats, ServerAnswer } from './server/server.ts'
export { Request } from './server/request.ts'
export { Response } from './server/response.ts'
export { PetrelError, ERRORS } from './core/errors.ts'
export type { ErrorCode } from './core/errors.ts'
export { DEFAULT_LIMITS, DEFAULT_TIMEOUTS } from './core/limits.ts'
export type { Limits, Timeouts } from './core/limits.ts'
