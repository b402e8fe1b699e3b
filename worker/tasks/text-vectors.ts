/**
 * Spec §2 BERT text vectorization: text → WordPiece ids → BERT → pool_output, first_token_output,
 * all_hidden_outputs, as comma/semicolon-separated strings (or JSON arrays with format "array").
 *
 * Batching: every request joins one batch whatever its length (one batchKey); collate pads the
 * batch to its longest item, not to 512, and batchCost (items × longest) keeps it inside the
 * manifest's max_batch_tokens. The attention mask keeps padding out of every real token's vector.
 *
 * all_hidden_outputs has exactly sequence_length positions, like the reference service that pads
 * every input to sequence_length: a request asking for it is fed to the model padded to
 * sequence_length itself, so its [PAD] positions carry the model's own hidden states for [PAD] at
 * those positions. They depend only on the request (padded keys are masked), never on batch-mates.
 */
import * as ort from 'onnxruntime-node';
import { SpecError } from '../../shared/errors.js';
import { TextPreprocessSchema } from '../../shared/manifest.js';
import { TASKS, type OutputSchemaField, type TextVectorsInputT } from '../../shared/tasks.js';
import { firstProblem } from '../../shared/validation.js';
import { vectorsToArrays, vectorsToString } from './text/format-vectors.js';
import { BertTextTokenizer } from './text/tokenizer.js';
import { itemOutput, outputTensor } from './outputs.js';
import { defineTask, type PreparedItem, type TaskPipeline } from './task.js';

export interface TextItem extends PreparedItem {
  ids: number[];
  typeIds: number[];
  /** Positions fed to the model: the tokens, or sequence_length when every position is asked for. */
  inputLength: number;
  sequenceLength: number;
  fields: OutputSchemaField[];
  format: TextVectorsInputT['format'];
}

/** The spec input, as the API forwards it (output_schema already split) or as a client wrote it. */
export function parseTextInput(input: Record<string, unknown>): TextVectorsInputT {
  const raw = Array.isArray(input.output_schema) ? { ...input, output_schema: input.output_schema.join(',') } : input;
  const parsed = TASKS['text-vectors'].input.safeParse(raw);
  if (!parsed.success) {
    throw new SpecError('INVALID_INPUT', firstProblem(parsed.error));
  }
  return parsed.data;
}

/** Batch feeds padded to the longest item: [PAD] ids, attention mask 0, token type 0. */
export function collateText(
  items: readonly TextItem[],
  padId: number,
  names: { ids: string; mask: string; types: string },
): Record<string, ort.Tensor> {
  const length = Math.max(...items.map((it) => it.inputLength));
  const ids = new BigInt64Array(items.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(items.length * length);
  const types = new BigInt64Array(items.length * length);
  items.forEach((it, row) => {
    const base = row * length;
    for (let t = 0; t < it.ids.length; t++) {
      ids[base + t] = BigInt(it.ids[t]);
      mask[base + t] = 1n;
      types[base + t] = BigInt(it.typeIds[t]);
    }
  });
  const dims = [items.length, length];
  return {
    [names.ids]: new ort.Tensor('int64', ids, dims),
    [names.mask]: new ort.Tensor('int64', mask, dims),
    [names.types]: new ort.Tensor('int64', types, dims),
  };
}

export const textVectors = defineTask(({ entry }) => {
  const pre = TextPreprocessSchema.parse(entry.manifest.preprocess);
  if (!entry.tokenizerPath)
    throw new Error(`model "${entry.manifest.name}": no tokenizer file (vocab.txt or tokenizer.json)`);
  const tokenizer = BertTextTokenizer.fromFile(entry.tokenizerPath, pre);
  const { inputs, outputs } = entry.manifest;
  const names = { ids: inputs.input_ids, mask: inputs.attention_mask, types: inputs.token_type_ids };

  const pipeline: TaskPipeline<TextItem> = {
    async preprocess(input) {
      const req = parseTextInput(input);
      if (req.sequence_length > pre.max_position_embeddings) {
        throw new SpecError(
          'INVALID_INPUT',
          `sequence_length must be at most ${pre.max_position_embeddings} for this model`,
        );
      }
      const encoded = await tokenizer.encode(req.first_sequence, req.second_sequence, req.sequence_length);
      const inputLength = req.output_schema.includes('all_hidden_outputs') ? req.sequence_length : encoded.ids.length;
      return {
        // The runner only needs these for its generic path; collate below builds the real feeds.
        feeds: {},
        batchKey: 'text',
        ids: encoded.ids,
        typeIds: encoded.typeIds,
        inputLength,
        sequenceLength: req.sequence_length,
        fields: req.output_schema,
        format: req.format,
      };
    },
    collate: (items) => collateText(items, tokenizer.padId, names),
    batchCost: (items) => items.length * Math.max(...items.map((it) => it.inputLength)),
    maxBatchCost: entry.manifest.batching.max_batch_tokens,
    async postprocess(result, index, item) {
      const hidden = outputTensor(result, outputs.last_hidden_state);
      if (hidden.dims.length !== 3)
        throw new Error(`${outputs.last_hidden_state} has dims [${hidden.dims.join(',')}], expected [N,L,H]`);
      const width = hidden.dims[2];
      const states = itemOutput(result, outputs.last_hidden_state, index).data as Float32Array;
      const vectors: Record<OutputSchemaField, () => Float32Array> = {
        pool_output: () => itemOutput(result, outputs.pooler_output, index).data as Float32Array,
        first_token_output: () => states.subarray(0, width),
        all_hidden_outputs: () => states.subarray(0, item.sequenceLength * width),
      };
      const answer: Record<string, unknown> = {};
      for (const field of item.fields) {
        const values = vectors[field]();
        const size = field === 'pool_output' ? values.length : width;
        if (item.format === 'string') answer[field] = await vectorsToString(values, size);
        else {
          const rows = await vectorsToArrays(values, size);
          answer[field] = field === 'all_hidden_outputs' ? rows : rows[0];
        }
      }
      return answer;
    },
  };
  return pipeline;
});
