// A real AF_UNIX SOCK_DGRAM receiver for tests. Node cannot bind one, so a tiny python3
// process binds the socket and prints every datagram it gets as one JSON line on stdout.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

const RECEIVER = String.raw`
import json, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\0' + path[1:] if path.startswith('@') else path)
print(json.dumps('BOUND'), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode('utf-8', 'replace')), flush=True)
`;

export class DatagramReceiver {
  readonly messages: string[] = [];
  private waiters: Array<() => void> = [];

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  /** Bind `address` (a path, or '@name' for the abstract namespace) and start collecting. */
  static async start(address: string): Promise<DatagramReceiver> {
    const child = spawn('python3', ['-u', '-c', RECEIVER, address]);
    const receiver = new DatagramReceiver(child);
    const lines = createInterface({ input: child.stdout });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`receiver exited with ${code}: ${stderr}`)));
      lines.on('line', (line) => {
        const text = JSON.parse(line) as string;
        if (text === 'BOUND') {
          resolve();
          return;
        }
        receiver.messages.push(text);
        for (const wake of receiver.waiters.splice(0)) wake();
      });
    });
    return receiver;
  }

  /** Wait until some received datagram satisfies `match`; returns it. */
  async waitFor(match: (m: string) => boolean, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching datagram; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  stop(): void {
    this.child.removeAllListeners('exit');
    this.child.kill();
  }
}
