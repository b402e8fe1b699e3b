/**
 * BERT WordPiece tokenization with Hugging Face's `tokenizers`, from the model's own vocab.txt
 * or tokenizer.json. The manifest's text preprocess (lower-casing, Chinese character splitting,
 * accents) is applied to both, so the two files of one model give the same ids.
 *
 * Truncation is done here rather than with the tokenizer's own setTruncation: that setting is
 * shared state on the tokenizer, and concurrent requests ask for different sequence_length values.
 * The arithmetic is the library's longest-first rule (tests compare the two).
 */
import fs from 'node:fs';
import { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, bertProcessing, type Encoding } from 'tokenizers';
import { SpecError } from '../../../shared/errors.js';
import type { TextPreprocess } from '../../../shared/manifest.js';

export interface EncodedText {
  ids: number[];
  /** 0 for [CLS], the first sequence and its [SEP]; 1 for the second sequence and its [SEP]. */
  typeIds: number[];
  tokens: string[];
}

/**
 * Longest-first split of a token `budget` (sequence_length less the special tokens) between a pair,
 * exactly as the `tokenizers` library (0.23) does it; the tests compare the two over every small
 * case. The shorter text is kept whole when the longer can take the rest of the budget; otherwise
 * each gets half, the odd token going to the longer text (the second on a tie). One quirk kept for
 * fidelity: when the shorter text alone reaches `maxLength` (the whole sequence_length, specials
 * included), the odd token goes to the second text.
 */
export function longestFirstLengths(
  first: number,
  second: number,
  budget: number,
  maxLength = budget,
): [number, number] {
  if (first + second <= budget) return [first, second];
  const shorter = Math.min(first, second);
  const half = Math.floor(budget / 2);
  const odd = budget % 2;
  if (shorter >= maxLength) return [half, half + odd];
  if (2 * shorter <= budget) return first <= second ? [first, budget - first] : [budget - second, second];
  return first > second ? [half + odd, half] : [half, half + odd];
}

/** vocab.txt: one token per line, its id is its line number (a repeated token keeps the later id, as BERT's loader does). */
export function readVocabFile(file: string): Record<string, number> {
  const vocab: Record<string, number> = {};
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, id) => {
    vocab[line.trimEnd()] = id;
  });
  return vocab;
}

export class BertTextTokenizer {
  readonly padId: number;
  readonly vocabSize: number;
  /** Special tokens [CLS]/[SEP] add to one sequence and to a pair (2 and 3 for BERT), measured once. */
  private specialCounts: Promise<{ single: number; pair: number }> | null = null;

  private constructor(
    private readonly tokenizer: Tokenizer,
    pre: TextPreprocess,
    readonly file: string,
  ) {
    const id = (token: string) => {
      const found = tokenizer.tokenToId(token);
      if (found == null) throw new Error(`tokenizer ${file} has no token ${token}`);
      return found;
    };
    this.padId = id(pre.pad_token);
    id(pre.unk_token);
    const cls = id(pre.cls_token);
    const sep = id(pre.sep_token);
    tokenizer.setNormalizer(
      bertNormalizer({
        cleanText: pre.clean_text,
        handleChineseChars: pre.split_chinese_chars,
        // Absent: the tokenizer follows `lowercase`, as BERT does.
        ...(pre.strip_accents === undefined ? {} : { stripAccents: pre.strip_accents }),
        lowercase: pre.lowercase,
      }),
    );
    if (!tokenizer.getPreTokenizer()) tokenizer.setPreTokenizer(bertPreTokenizer());
    if (!tokenizer.getPostProcessor())
      tokenizer.setPostProcessor(bertProcessing([pre.sep_token, sep], [pre.cls_token, cls]));
    // Lengths are decided per request (see encode); a file's own settings must not interfere.
    tokenizer.disableTruncation();
    tokenizer.disablePadding();
    this.vocabSize = tokenizer.getVocabSize(true);
  }

  /** Loads a vocab.txt (WordPiece with BERT's normalizer, pre-tokenizer and [CLS]/[SEP] placement) or a tokenizer.json. */
  static fromFile(file: string, pre: TextPreprocess): BertTextTokenizer {
    if (file.endsWith('.json')) return new BertTextTokenizer(Tokenizer.fromFile(file), pre, file);
    const model = WordPiece.init(readVocabFile(file), {
      unkToken: pre.unk_token,
      continuingSubwordPrefix: '##',
      maxInputCharsPerWord: pre.max_input_chars_per_word,
    });
    const tokenizer = new Tokenizer(model);
    // As Hugging Face's BertTokenizerFast does: the special tokens written in the text are the tokens,
    // so a vocab.txt and the tokenizer.json exported from it agree.
    tokenizer.addSpecialTokens([pre.unk_token, pre.sep_token, pre.pad_token, pre.cls_token]);
    return new BertTextTokenizer(tokenizer, pre, file);
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.tokenToId(token) ?? null;
  }

  /**
   * [CLS] first [SEP] (second [SEP]) in at most `sequenceLength` tokens: the texts are truncated
   * longest-first, never the special tokens. An empty `second` means a single sentence.
   */
  async encode(first: string, second: string, sequenceLength: number): Promise<EncodedText> {
    const specials = await this.specialTokenCounts();
    const isPair = second.length > 0;
    const added = isPair ? specials.pair : specials.single;
    const budget = sequenceLength - added;
    if (budget < 0) {
      throw new SpecError(
        'INVALID_INPUT',
        `sequence_length ${sequenceLength} leaves no room for the ${added} special tokens ([CLS]/[SEP]) of ${isPair ? 'a sentence pair' : 'a sentence'}`,
      );
    }
    const [a, b] = await Promise.all([this.encodeText(first), isPair ? this.encodeText(second) : null]);
    const [keepA, keepB] = longestFirstLengths(a.getLength(), b?.getLength() ?? 0, budget, sequenceLength);
    truncateEnd(a, keepA);
    if (b) truncateEnd(b, keepB);
    const full = this.tokenizer.postProcess(a, b, true);
    return { ids: full.getIds(), typeIds: full.getTypeIds(), tokens: full.getTokens() };
  }

  private encodeText(text: string): Promise<Encoding> {
    return this.tokenizer.encode(text, null, { addSpecialTokens: false });
  }

  private specialTokenCounts(): Promise<{ single: number; pair: number }> {
    this.specialCounts ??= (async () => {
      const [x, y] = await Promise.all([this.encodeText(''), this.encodeText('')]);
      return {
        single: this.tokenizer.postProcess(x, null, true).getLength(),
        pair: this.tokenizer.postProcess(x, y, true).getLength(),
      };
    })();
    return this.specialCounts;
  }
}

/** Keeps the first `length` tokens. The direction is explicit: the binding's default cuts from the left. */
function truncateEnd(encoding: Encoding, length: number): void {
  if (encoding.getLength() > length) encoding.truncate(length, 0, 'right');
}
