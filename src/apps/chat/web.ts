// `petrel chat --http-port PORT`: the room for browsers. An HTTP server (Petrel's own) serves the
// chat page at / (plain HTML and JavaScript, nothing from elsewhere) and a WebSocket at /ws; each
// WebSocket is a client of the same room as the TCP ones, one text message per line, under the
// same commands, limits and slow-reader rule (the room's maxOutgoingBytes comes first: the
// WebSocket's own backpressure limit is set above it).

import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createServer, type HttpServer } from '../../server/server.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import type { Client, ChatRoom } from './room.ts'

const PAGE = readFileSync(new URL('./assets/chat.html', import.meta.url))

/** The largest WebSocket message: well over a line, so that a long one gets the room's own answer ("line too long"). */
const MAX_MESSAGE_BYTES = 64 * 1024

export class ChatWeb {
  readonly server: HttpServer
  /** Where it listens, once listen() resolved. */
  address: AddressInfo | null = null

  constructor(room: ChatRoom, maxOutgoingBytes: number) {
    const server = createServer()
    server.get('/', page)
    server.websocket<Client | null>(
      '/ws',
      {
        upgrade: () => null,
        open: (ws) => {
          ws.data = room.joinWebSocket(ws)
        },
        message: (ws, data) => room.message(ws.data!, typeof data === 'string' ? data : data.toString('utf8')),
        close: (ws) => room.disconnected(ws.data!),
      },
      { maxMessageBytes: MAX_MESSAGE_BYTES, maxFrameBytes: MAX_MESSAGE_BYTES, maxBackpressureBytes: 2 * maxOutgoingBytes + MAX_MESSAGE_BYTES },
    )
    this.server = server
  }

  async listen(host: string, port: number, reusePort: boolean): Promise<AddressInfo> {
    this.address = await this.server.listen({ host, port, reusePort })
    return this.address
  }

  close(): Promise<void> {
    return this.server.close({ destroy: true })
  }
}

function page(_req: Request, res: Response): void {
  res.setHeader('Content-Type', 'text/html; charset=utf-8')
  res.setHeader('Cache-Control', 'no-cache')
  res.end(PAGE)
}

/**
 * The room's web side on `port` when one is given (--http-port), else null. A web side that cannot
 * listen leaves nothing open: the caller closes the room and reports the error.
 */
export async function openWeb(room: ChatRoom, host: string, port: number | undefined, maxOutgoingBytes: number, reusePort: boolean): Promise<ChatWeb | null> {
  if (port === undefined) return null
  const web = new ChatWeb(room, maxOutgoingBytes)
  await web.listen(host, port, reusePort)
  return web
}
