// The `calibd` command. Each subcommand parses its options, calls the library and turns
// typed errors into one line on stderr with exit code 2; nothing is written on failure.

import { Command, CommanderError, Option } from 'commander';
import { CalibdError, calibdVersion, errorMessage } from '../common/index.js';
import { calibrateCommand, evalCommand, inspectCommand } from './commands.js';
import { fleetCommand } from './fleet.js';
import { EXPORT_FORMATS, ACTIVATION_TYPES, BIAS_CORRECTIONS, DEFAULT_TRT_VERSION, EQUALIZATIONS, QUANT_TARGETS, WEIGHT_RANGES } from '../quant/index.js';
import { CALIBRATION_METHODS } from '../calibration/index.js';
import { serveCommand } from './serve.js';
import { positiveInt, positiveNumber } from './args.js';
import { replayCommand } from './replay.js';
import { PRESETS } from '../images/index.js';
import { exportCommand } from './export.js';

export async function run(argv: string[]): Promise<number> {
  const program = new Command()
    .name('calibd')
    .description('On-device INT8 calibration agent for ONNX models')
    .version(calibdVersion())
    .exitOverride()
    .configureOutput(ONE_LINE_ERRORS);

  program
    .command('calibrate')
    .description('calibrate an FP32 ONNX model on sample data and write an INT8 QDQ model')
    .requiredOption('--model <file>', 'FP32 .onnx model')
    .option('--data <dir>', 'folder or file of samples: float32 .npy, or JPEG/PNG/WebP images with --preprocess; NAME=DIR once per input for several', collect, [])
    .option('--preprocess <spec>', `how images become tensors: a preset (${Object.keys(PRESETS).join(', ')}), a .json/.yaml spec file or inline JSON`)
    .option('--stats <files...>', 'calibrate from saved statistics (`calibd fleet stats --out`), merged exactly, instead of --data')
    .addOption(new Option('--method <method>', 'range estimator').choices([...CALIBRATION_METHODS]).default('mse'))
    .addOption(new Option('--target <runtime>', 'runtime the INT8 model is for: ort (ONNX Runtime CPU) or tensorrt (explicit quantization: int8 zero-point 0, Q/DQ on weighted layers\' inputs, opset 13)').choices([...QUANT_TARGETS]).default('ort'))
    .option('--per-channel', 'one weight scale per output channel (the default)')
    .option('--per-tensor', 'one weight scale per weight tensor')
    .option('--samples <n>', 'use at most N samples', positiveInt)
    .option('--exclude <names...>', 'node names or op types to keep in FP32')
    .option('--symmetric-activations', 'int8 symmetric activations instead of uint8 asymmetric')
    .option('--reduce-range', '7-bit activations and weights')
    .addOption(new Option('--activation-type <type>', 'integer type of activations; auto: int8 on arm64 (ORT fuses S8S8 there), uint8 elsewhere').choices([...ACTIVATION_TYPES]).default('auto'))
    .addOption(new Option('--weight-range <range>', "int8 weights in [-127,127] (full) or [-63,63] (reduced); auto: reduced on x86 without VNNI, whose kernels saturate").choices([...WEIGHT_RANGES]).default('auto'))
    .addOption(new Option('--bias-correction <how>', 'correct Conv/Gemm biases for the mean shift of INT8: from BatchNorm statistics (datafree), from the inputs\' means (analytical) or layer by layer over the samples (empirical; one INT8 pass per layer)').choices([...BIAS_CORRECTIONS]).default('empirical'))
    .addOption(new Option('--equalize <how>', 'cross-layer equalization of Conv → [Relu] → Conv channels before measuring: from measured channel ranges (activations) or from weights alone').choices([...EQUALIZATIONS]).default('activations'))
    .option('--percentile <p>', 'percentile for --method percentile (default 99.999)', parseFloat)
    .option('--bins <n>', 'histogram bins (default 2048)', positiveInt)
    .option('--input-range <min,max>', 'input contract for --method datafree (default 0,1)')
    .option('--input-shape <name=shape>', 'shape of an input with free dimensions for --method datafree, batch axis first, e.g. x=1x3x640x640 (once per input)', collect, [])
    .option('--batch-size <n>', 'most samples per forward pass (default 32; fewer when --max-memory says so)', positiveInt)
    .option('--max-memory <mb>', 'activation memory calibration may hold at once, MB (default: an eighth of RAM, at most 512)', positiveInt)
    .option('--exact-histograms', 'count every activation value; by default large NCHW maps are counted on a 2×2 grid, their extremes exactly')
    .option('--threads <n>', 'ONNX Runtime threads (default 1)', positiveInt)
    .requiredOption('--out <file>', 'INT8 .onnx to write')
    .option('--auto', 'leave FP32 the nodes that do not pay in INT8 on this CPU (timed; validated on held-out samples)')
    .option('--report', 'with --auto: print the per-layer table and the timings')
    .option('--budget-agreement <x>', 'with --auto: least top-1 agreement with FP32, 0..1 (default 0.99)', parseFloat)
    .option('--budget-sqnr <db>', 'with --auto: least output SQNR against FP32 in dB (default 30)', parseFloat)
    .option('--metric <metric>', 'with --auto: task metric, top1 | top1-steps | sqnr | mask-iou:T (default: inferred from the output)')
    .option('--budget <x>', 'with --auto: least value of --metric (default per metric: top1 0.99, mask-iou 0.98, sqnr 30)', parseFloat)
    .action(async (o) => {
      await calibrateCommand(o);
    });

  program
    .command('eval')
    .description('compare an INT8 model with its FP32 reference: agreement, SQNR, accuracy, worst tensors')
    .requiredOption('--fp32 <file>', 'FP32 .onnx model')
    .requiredOption('--int8 <file>', 'INT8 .onnx model')
    .option('--data <dir>', 'folder or file of samples: float32 .npy, or JPEG/PNG/WebP images with --preprocess; NAME=DIR once per input', collect, [])
    .option('--preprocess <spec>', 'how images become tensors: a preset, a .json/.yaml spec file or inline JSON')
    .option('--labels <file>', 'integer class labels: .npy in sample order, or labels.json mapping each sample file name to its class')
    .option('--samples <n>', 'use at most N samples', positiveInt)
    .option('--threads <n>', 'ONNX Runtime threads (default 1)', positiveInt)
    .option('--metric <metric>', 'task metric: top1 | top1-steps | sqnr | mask-iou:T (default: inferred from the output)')
    .option('--per-layer', 'per quantized node: output SQNR with only it INT8, and its accumulated SQNR in the full INT8 model')
    .option('--json', 'print JSON')
    .action(async (o) => {
      await evalCommand(o);
    });

  program
    .command('inspect')
    .description('show the calibration stored in an INT8 model')
    .argument('<model>', '.onnx model')
    .option('--json', 'print JSON')
    .action(async (model, o) => {
      await inspectCommand(model, o);
    });

  program
    .command('export')
    .description("write an INT8 model's calibration in another tool's format: tensorrt-cache, TensorRT's calibration cache for ONNX Runtime's TensorRT EP")
    .argument('<model>', 'INT8 .onnx model written by calibd calibrate')
    .addOption(new Option('--format <format>', 'what to write').choices([...EXPORT_FORMATS]).makeOptionMandatory())
    .requiredOption('--out <file>', 'file to write, e.g. calib.cache')
    .option('--trt-version <n>', `TensorRT version in the cache header, as TensorRT numbers it (default ${DEFAULT_TRT_VERSION}: 8.6.1)`, positiveInt)
    .option('--fp32 <file>', 'the FP32 model the TensorRT EP will run: report how many cache names exist in it')
    .action(async (model, o) => {
      await exportCommand(model, o);
    });

  program
    .command('replay')
    .description('send a folder of samples (images or .npy) to a running daemon; report latency and, with labels, accuracy')
    .requiredOption('--data <dir>', 'folder or file of samples: JPEG/PNG/WebP images (the daemon needs preprocess:) or float32 .npy')
    .requiredOption('--url <url>', 'the daemon, e.g. http://127.0.0.1:8080')
    .option('--model-name <name>', "the served model's name (default: asked from the daemon)")
    .option('--rate <r>', 'requests per second (default: as fast as answers come)', positiveNumber)
    .option('--count <n>', 'requests to send (default: each sample once)', positiveInt)
    .option('--loop', 'cycle through the samples until --count, or until Ctrl-C')
    .option('--labels <file>', 'class labels: .npy in sample order or .json by file name (default: DIR/labels.json when present)')
    .action(async (o) => {
      await replayCommand(o);
    });

  program
    .command('serve')
    .description('run the daemon: HTTP inference, live sampling, online recalibration')
    .option('--config <file>', 'YAML or JSON config (default: built-in defaults and CALIBD_* variables)')
    .action(async (o) => {
      await serveCommand(o);
    });

  let exitCode = 0;
  program.addCommand(fleetCommand((code) => (exitCode = code)));
  unknownOptionsFirst(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CalibdError) {
      process.stderr.write(`calibd: ${errorMessage(err)}\n`);
      return 2;
    }
    process.stderr.write(`calibd: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
    return 1;
  }
}

/** Commander puts its did-you-mean on a second line; errors here are one line. */
const ONE_LINE_ERRORS = {
  writeErr: (s: string) => process.stderr.write(s),
  outputError: (s: string, write: (s: string) => void) => write(s.replace(/\n\(Did you mean (.*)\)/, ' (did you mean $1)')),
};

/**
 * Commander checks required options before unknown ones, so `--modle x` was reported as a
 * missing --model. Required options are checked here after the unknown-option check
 * (with its did-you-mean) instead, with commander's own message.
 */
function unknownOptionsFirst(cmd: Command): void {
  // Every level throws instead of exiting, so a usage error of `fleet ls` exits 2 as one of
  // `calibrate` does (fleet's subcommands are built apart and inherit nothing).
  cmd.exitOverride().configureOutput(ONE_LINE_ERRORS);
  const required = cmd.options.filter((o) => o.mandatory);
  for (const o of required) o.mandatory = false;
  if (required.length > 0) {
    cmd.hook('preAction', (self) => {
      for (const o of required) {
        if (self.getOptionValue(o.attributeName()) === undefined) self.error(`error: required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
      }
    });
  }
  for (const sub of cmd.commands) unknownOptionsFirst(sub);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
