// A WebSocket route's refusal of a handshake (WebSocketHandlers.upgrade returns one): kept apart
// from websocket.ts so that the package's index can export it without loading the WebSocket engine.

/** An answer to a handshake instead of the upgrade (WebSocketHandlers.upgrade). */
export class Refusal {
  readonly status: number
  readonly message: string
  constructor(status: number, message: string) {
    this.status = status
    this.message = message
  }
}

export function refuse(status: number, message = 'the WebSocket upgrade was refused'): Refusal {
  return new Refusal(status, message)
}
