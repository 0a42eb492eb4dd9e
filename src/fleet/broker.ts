// `mqtt.url: embedded`: an in-process broker (aedes) on the loopback interface, so a
// single box (or `npm start`) needs no separate broker. It speaks MQTT 3.1.1 only, has no
// users or ACLs and is not reachable from the network: for a fleet, run a real broker.

import { createServer, type Server } from 'node:net';

export const EMBEDDED_HOST = '127.0.0.1';
export const EMBEDDED_DEFAULT_PORT = 1883;

export interface EmbeddedBroker {
  host: string;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(opts: { port?: number; host?: string } = {}): Promise<EmbeddedBroker> {
  let mod: typeof import('aedes');
  try {
    mod = await import('aedes');
  } catch (err) {
    throw new Error(`mqtt.url is 'embedded' but the aedes package is not installed (npm install aedes); or point mqtt.url at a broker: ${(err as Error).message}`);
  }
  const broker = await mod.Aedes.createBroker();
  const host = opts.host ?? EMBEDDED_HOST;
  const server: Server = createServer(broker.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? EMBEDDED_DEFAULT_PORT, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  }
  const port = (server.address() as { port: number }).port;
  return {
    host,
    port,
    url: `mqtt://${host}:${port}`,
    async close() {
      await new Promise<void>((r) => broker.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
