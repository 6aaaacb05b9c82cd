/**
 * `rise generate`: one completion from a model, printed to stdout — the place to check a model before
 * an experiment. `--chat` sends the prompt as a user message through the model's chat template and stops
 * at its end of turn; without it the prompt is continued as plain text. Greedy at temperature 0.
 */

import { type Command, InvalidArgumentError } from 'commander';
import { Generator } from '../engine/generate.ts';
import { defaultThreads } from '../engine/session.ts';
import { loadModelForInference } from '../models/load.ts';
import { chatTemplateFor } from '../rise/chat-template.ts';
import { UsageError } from './errors.ts';

function number(kind: 'int' | 'float', min: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n)) || n < min) {
      throw new InvalidArgumentError(`expected ${kind === 'int' ? 'an integer' : 'a number'} >= ${min}, got "${value}"`);
    }
    return n;
  };
}

interface GenerateOptions {
  model: string;
  chat?: boolean;
  system?: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('print a completion of PROMPT by a model (greedy at temperature 0)')
    .argument('<prompt>', 'the text to continue, or with --chat the user message to answer')
    .requiredOption('--model <model>', 'a model store name or digest (`rise model ls`), or a checkpoint directory (a run\'s models/<step>/g<n>)')
    .option('--chat', "send the prompt as a user message through the model's chat template; stop at its end of turn")
    .option('--system <text>', 'with --chat: a system message first')
    .option('--max-tokens <n>', 'most tokens to generate', number('int', 1), 256)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', number('float', 0), 0)
    .option('--top-p <p>', 'nucleus sampling (1 = off)', number('float', 0), 1)
    .option('--seed <s>', 'sampling seed', number('int', 0), 0)
    .action(async (prompt: string, options: GenerateOptions) => {
      if (options.system !== undefined && !options.chat) throw new UsageError('--system needs --chat');
      const model = await loadModelForInference(options.model);
      const { tokenizer, config } = model;
      const template = options.chat ? chatTemplateFor(tokenizer, model.stop) : null;
      const messages = [...(options.system !== undefined ? [{ role: 'system' as const, content: options.system }] : []), { role: 'user' as const, content: prompt }];
      const ids = template !== null ? template.renderPrompt({ messages }) : [...(tokenizer.special.bos !== null ? [tokenizer.special.bos] : []), ...tokenizer.encode(prompt)];
      if (ids.length >= config.context) throw new UsageError(`the prompt has ${ids.length} tokens; the model's context is ${config.context}`);
      const maxNewTokens = Math.min(options.maxTokens, config.context - ids.length);
      const generator = new Generator(config, model.params, tokenizer, { threads: defaultThreads() });
      const started = Date.now();
      const [out] = await generator.generate([{ id: 'prompt', prompt: ids }], {
        temperature: options.temperature,
        topP: options.topP,
        maxNewTokens,
        stopTokens: template !== null ? [...template.stopTokens] : [tokenizer.special.eos],
        seed: options.seed,
        batchSize: 1,
      });
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(`${out.text}\n`);
      process.stderr.write(
        `rise: ${out.tokens.length} tokens after a ${ids.length}-token prompt in ${seconds.toFixed(1)} s (the session's start included; \`npm run bench:models\` measures speed); finished: ${out.finishReason}\n`,
      );
    });
}
