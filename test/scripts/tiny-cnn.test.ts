// Checks the hand-written backward pass of the training script's CNN against finite
// differences, so a wrong gradient shows up here rather than as a mysteriously weak model.
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../scripts/lib/mnist-data.js';
import { TinyCnn } from '../../scripts/lib/tiny-cnn.js';

describe('TinyCnn gradients', () => {
  it('match central finite differences for every parameter tensor', () => {
    const batch = 3;
    const rand = mulberry32(7);
    const images = new Float32Array(batch * 784).map(() => rand());
    const labels = new Uint8Array([3, 7, 1]);
    const net = new TinyCnn(11);
    const loss = (): number => {
      net.forward(images, batch, true);
      return net.backward(images, labels, batch);
    };
    loss();
    const analytic = net.params().map((p) => Float32Array.from(p.grad));

    net.params().forEach((p, k) => {
      // The entries with the largest gradients, where float32 noise matters least. The step
      // is small because ReLU and max-pool kinks make larger steps disagree by design.
      const order = Array.from(p.grad.keys()).sort((a, b) => Math.abs(analytic[k][b]) - Math.abs(analytic[k][a]));
      for (const i of order.slice(0, 3)) {
        const saved = p.value[i];
        const h = 1e-3;
        p.value[i] = saved + h;
        const up = loss();
        p.value[i] = saved - h;
        const down = loss();
        p.value[i] = saved;
        const numeric = (up - down) / (2 * h);
        const a = analytic[k][i];
        expect(Math.abs(numeric - a), `${p.name}[${i}] analytic ${a} numeric ${numeric}`).toBeLessThan(1e-3 + 0.02 * Math.abs(a));
      }
    });
  });

  it('uses running statistics at inference, batch statistics in training', () => {
    const net = new TinyCnn(1);
    const rand = mulberry32(5);
    const images = new Float32Array(4 * 784).map(() => rand());
    const single = Float32Array.from(net.forward(images.subarray(0, 784), 1, false));
    const inBatch = net.forward(images, 4, false).slice(0, 10);
    expect(Array.from(inBatch)).toEqual(Array.from(single));
    net.forward(images, 4, true);
    expect(net.bn1.runningMean.some((v) => v !== 0)).toBe(true);
  });
});
