/**
 * Proxies on 127.0.0.1 that stand between the agent and a real server, written for the tests:
 * - `startFaultProxy`: an HTTP proxy in front of the S3 server that answers a share of requests
 *   with 500 or 503 (S3's own error XML) or resets the connection, and forwards the rest
 *   untouched (SigV4 signs the Host header, which is passed through as the client sent it);
 * - `startTcpProxy`: a byte-for-byte TCP proxy (TLS passes through) that can be cut and
 *   restored, so a server looks stopped to the agent without stopping it for other tests.
 * Both count what they did; the HTTP proxy also counts the body bytes it forwards (the S3
 * server's access log gives no size for UploadPart). Randomness is seeded: a failing run can be replayed.
 */
import { Agent, createServer as createHttpServer, request, type IncomingMessage } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

/** A small seeded PRNG (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

export interface FaultProxy {
  url: string;
  /** Requests forwarded, answered with an error, reset; body bytes forwarded to the server. */
  counts: { forwarded: number; errors: number; resets: number; bodyBytes: number };
  /** Each PUT forwarded: its query and whether it carried a Content-MD5. */
  puts: { query: string; contentMd5: boolean }[];
  stop(): Promise<void>;
}

const errorXml = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`;

export async function startFaultProxy(
  upstream: string,
  faults: {
    errorRate: number;
    resetRate: number;
    seed?: number;
    /** Answers every PUT with another (well-formed) MD5 as its ETag: a server that stored other bytes. */
    wrongEtag?: boolean;
  },
): Promise<FaultProxy> {
  const puts: FaultProxy["puts"] = [];
  const target = new URL(upstream);
  const roll = random(faults.seed ?? 1);
  const counts = { forwarded: 0, errors: 0, resets: 0, bodyBytes: 0 };
  const sockets = new Set<Socket>();
  // Its own pool, destroyed on stop: idle upstream sockets must not keep the test process alive.
  const upstreamAgent = new Agent({ keepAlive: true });
  const server = createHttpServer((req: IncomingMessage, res) => {
    const r = roll();
    if (r < faults.errorRate) {
      counts.errors++;
      const status = counts.errors % 2 ? 503 : 500;
      req.resume();
      req.on("end", () => {
        res.writeHead(status, { "content-type": "application/xml" });
        res.end(errorXml(status === 503 ? "SlowDown" : "InternalError"));
      });
      return;
    }
    if (r < faults.errorRate + faults.resetRate) {
      counts.resets++;
      req.socket.destroy();
      return;
    }
    counts.forwarded++;
    if (req.method === "PUT")
      puts.push({ query: req.url?.split("?")[1] ?? "", contentMd5: !!req.headers["content-md5"] });
    const forward = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        agent: upstreamAgent,
        path: req.url,
        headers: req.headers,
      },
      upstreamRes => {
        const headers = { ...upstreamRes.headers };
        if (faults.wrongEtag && req.method === "PUT" && headers.etag)
          headers.etag = `"${"0".repeat(32)}"`;
        res.writeHead(upstreamRes.statusCode ?? 502, headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on("error", () => req.socket.destroy());
    req.on("data", (chunk: Buffer) => (counts.bodyBytes += chunk.length));
    req.pipe(forward);
  });
  server.on("connection", s => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    puts,
    stop: () =>
      new Promise(resolve => {
        for (const s of sockets) s.destroy();
        upstreamAgent.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface TcpProxy {
  port: number;
  /** Closes the port and every connection: the server looks stopped. */
  cut(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  stop(): Promise<void>;
}

/** Forwards 127.0.0.1:`listenPort` (any free port by default) to 127.0.0.1:`upstreamPort`. */
export async function startTcpProxy(upstreamPort: number, listenPort?: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  };
  const open = async (port?: number) => {
    server = createServer(client => {
      const upstream = connect(upstreamPort, "127.0.0.1");
      track(client);
      track(upstream);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    return listen(server, port);
  };
  const port = await open(listenPort);
  const cut = () =>
    new Promise<void>(resolve => {
      for (const s of sockets) s.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  return {
    port,
    cut,
    restore: async () => {
      if (!server) await open(port);
    },
    stop: cut,
  };
}
