// @ts-check
// Drawing a spec output over its input: boxes (SVG), masks and class maps (canvas), top-class
// bars, text-vector summaries. Every mask encoding the hub answers (array, RLE, PNG) is drawn.
import { h, fmt, pct, colorOf, rgbOf } from './dom.js';

/** @typedef {import('/sdk/index.js').Task} Task */
/** @typedef {import('/sdk/index.js').AnyOutput} AnyOutput */
/** @typedef {import('/sdk/index.js').ObjectDetectionOutput} DetectionOutput */
/** @typedef {import('/sdk/index.js').InstanceSegmentationOutput} InstanceOutput */
/** @typedef {import('/sdk/index.js').SemanticSegmentationOutput} SegmentationOutput */
/** @typedef {import('/sdk/index.js').ImageClassificationOutput} ClassificationOutput */
/** @typedef {import('/sdk/index.js').TextVectorsOutput} VectorsOutput */
/** @typedef {import('/sdk/index.js').RleMask} RleMask */
/** @typedef {import('/sdk/index.js').PngMap} PngMap */
/** @typedef {{ url: string, width: number, height: number }} InputImage */
/** @typedef {{ plane: ArrayLike<number>, color: (v: number) => number[] }} Layer */

/**
 * Decodes one mask or class map into a width×height array of values (0 = off).
 * @param {boolean[][] | number[][] | RleMask | PngMap} mask
 * @param {number} width
 * @param {number} height
 */
async function decodePlane(mask, width, height) {
  const out = new Uint16Array(width * height);
  if (Array.isArray(mask)) {
    for (let y = 0; y < mask.length; y++) {
      const row = mask[y];
      for (let x = 0; x < row.length; x++) {
        const v = row[x];
        out[y * width + x] = v === true ? 1 : v === false ? 0 : v;
      }
    }
  } else if ('counts' in mask) {
    // COCO uncompressed RLE, column-major, starting with zeros.
    const [mh] = mask.size;
    let i = 0;
    mask.counts.forEach((run, k) => {
      if (k % 2 === 1) for (let j = i; j < i + run; j++) out[(j % mh) * width + Math.floor(j / mh)] = 1;
      i += run;
    });
  } else if (mask.format === 'png') {
    const img = new Image();
    img.src = `data:image/png;base64,${mask.data}`;
    await img.decode();
    /** @type {HTMLCanvasElement} */
    const c = h('canvas', { width, height });
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, width, height).data;
    for (let i = 0; i < out.length; i++) out[i] = px[i * 4];
  }
  return out;
}

/**
 * A canvas the size of the image, painted where `plane` is set with `colour(value)`.
 * @param {HTMLCanvasElement} canvas
 * @param {Layer[]} planes
 */
function paint(canvas, planes) {
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (const { plane, color } of planes) {
    for (let i = 0; i < plane.length; i++) {
      const v = plane[i];
      if (!v) continue;
      const [r, g, b, a] = color(v);
      if (!a) continue;
      img.data.set([r, g, b, a], i * 4);
    }
  }
  ctx.putImageData(img, 0, 0);
}

/**
 * The image with an SVG layer (boxes, labels) and a canvas layer (masks), in image pixels.
 * @param {string} imageUrl
 * @param {number} width
 * @param {number} height
 * @returns {{ box: HTMLDivElement, canvas: HTMLCanvasElement, svg: SVGSVGElement }}
 */
export function stage(imageUrl, width, height) {
  const img = h('img', { src: imageUrl, alt: 'input image', width, height });
  const canvas = h('canvas', { class: 'layer masks', width, height });
  const svg = h('svg:svg', { class: 'layer boxes', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none' });
  const box = h(
    'div',
    { class: 'stage', style: `aspect-ratio: ${width} / ${height}; max-width: min(100%, ${Math.max(width, 360)}px)` },
    img,
    canvas,
    svg,
  );
  return { box, canvas, svg };
}

/**
 * @param {SVGSVGElement} svg
 * @param {DetectionOutput} output
 * @param {number} width
 */
function drawBoxes(svg, output, width) {
  const stroke = Math.max(1.5, width / 400);
  const font = Math.max(11, width / 45);
  output.detection_boxes.forEach(([y1, x1, y2, x2], i) => {
    const id = output.detection_classes[i];
    const label = `${output.detection_class_names[i]} ${fmt(output.detection_scores[i], 2)}`;
    const g = h('svg:g', { class: 'detection', 'data-class': output.detection_class_names[i] });
    g.append(
      h('svg:rect', {
        x: x1,
        y: y1,
        width: Math.max(0, x2 - x1),
        height: Math.max(0, y2 - y1),
        fill: 'none',
        stroke: colorOf(id),
        'stroke-width': stroke,
      }),
    );
    const ty = y1 - font * 1.25 >= 0 ? y1 - font * 1.25 : y1;
    g.append(
      h('svg:rect', {
        x: x1,
        y: ty,
        width: label.length * font * 0.62 + 6,
        height: font * 1.25,
        fill: colorOf(id, 0.85),
      }),
    );
    g.append(h('svg:text', { x: x1 + 3, y: ty + font, 'font-size': font, fill: '#fff' }, label));
    svg.append(g);
  });
}

/**
 * @param {DetectionOutput} output
 * @param {{ title: string, cell: (i: number) => unknown }} [extra]
 */
function detectionTable(output, extra) {
  if (!output.detection_boxes.length) return h('p', { class: 'muted' }, 'No detections above the score threshold.');
  return h(
    'table',
    { class: 'grid compact' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, '#'),
        h('th', {}, 'class'),
        h('th', {}, 'score'),
        h('th', {}, 'box [y1, x1, y2, x2]'),
        extra ? h('th', {}, extra.title) : null,
      ),
    ),
    h(
      'tbody',
      {},
      output.detection_boxes.map((b, i) =>
        h(
          'tr',
          {},
          h('td', {}, i + 1),
          h(
            'td',
            {},
            h('span', { class: 'swatch', style: `background:${colorOf(output.detection_classes[i])}` }),
            ` ${output.detection_class_names[i]} (${output.detection_classes[i]})`,
          ),
          h('td', {}, fmt(output.detection_scores[i], 3)),
          h('td', { class: 'mono' }, `[${b.map((v) => fmt(v, 1)).join(', ')}]`),
          extra ? h('td', {}, String(extra.cell(i))) : null,
        ),
      ),
    ),
  );
}

/** @param {ClassificationOutput} output */
function bars(output) {
  const top = Object.entries(output.class_probs)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  return h(
    'div',
    { class: 'bars' },
    h(
      'p',
      { class: 'headline' },
      `Top class: `,
      h('strong', {}, output.class_name),
      ` (id ${output.class}, ${pct(output.class_probs[top[0]?.[0]] ?? 0)})`,
    ),
    top.map(([name, p]) =>
      h(
        'div',
        { class: 'bar-row' },
        h('span', { class: 'bar-label', title: name }, name),
        h('span', { class: 'bar-track' }, h('span', { class: 'bar', style: `width:${Math.max(0.5, p * 100)}%` })),
        h('span', { class: 'bar-value' }, pct(p)),
      ),
    ),
  );
}

/** @param {VectorsOutput} output */
function vectors(output) {
  const rows = [];
  for (const key of /** @type {const} */ (['pool_output', 'first_token_output', 'all_hidden_outputs'])) {
    const v = output[key];
    if (v === undefined) continue;
    /** @type {number[][]} */
    const matrix =
      typeof v === 'string'
        ? v.split(';').map((r) => r.split(',').map(Number))
        : Array.isArray(v[0])
          ? /** @type {number[][]} */ (v)
          : [/** @type {number[]} */ (v)];
    const first = matrix[0] ?? [];
    const norm = Math.sqrt(first.reduce((s, x) => s + x * x, 0));
    const dims = key === 'all_hidden_outputs' ? `${matrix.length} × ${first.length}` : String(first.length);
    rows.push(
      h(
        'tr',
        {},
        h('td', { class: 'mono' }, key),
        h('td', {}, dims),
        h('td', {}, fmt(norm, 4) + (key === 'all_hidden_outputs' ? ' (first position)' : '')),
        h(
          'td',
          { class: 'mono' },
          first
            .slice(0, 6)
            .map((x) => fmt(x, 4))
            .join(', ') + (first.length > 6 ? ', …' : ''),
        ),
      ),
    );
  }
  return h(
    'table',
    { class: 'grid compact vectors' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'output'), h('th', {}, 'dimension'), h('th', {}, 'L2 norm'), h('th', {}, 'first values')),
    ),
    h('tbody', {}, rows),
  );
}

/**
 * The drawing for one output. `image`: { url, width, height } of the input (image tasks);
 * `labels`: class names by id (for segmentation legends).
 * @param {Task} task
 * @param {AnyOutput | import('/sdk/index.js').SpecErrorBody} answer
 * @param {InputImage | null} image
 * @param {(string | null)[] | null} labels
 */
export async function drawOutput(task, answer, image, labels) {
  const output = /** @type {any} */ (answer);
  if (task === 'image-classification') {
    return h(
      'div',
      { class: 'result-grid' },
      image ? h('img', { class: 'thumb', src: image.url, alt: 'input image' }) : null,
      bars(output),
    );
  }
  if (task === 'text-vectors') return vectors(output);
  if (!image) return h('p', { class: 'muted' }, 'No input image to draw on.');
  const { box, canvas, svg } = stage(image.url, image.width, image.height);
  if (task === 'object-detection') {
    drawBoxes(svg, output, image.width);
    return h('div', { class: 'result-grid' }, box, detectionTable(output));
  }
  if (task === 'instance-segmentation') {
    /** @type {Layer[]} */
    const planes = [];
    /** @type {number[]} */
    const areas = [];
    for (let i = 0; i < output.detection_masks.length; i++) {
      const plane = await decodePlane(output.detection_masks[i], image.width, image.height);
      const [r, g, b] = rgbOf(output.detection_classes[i] + i * 3);
      planes.push({ plane, color: () => [r, g, b, 110] });
      areas.push(plane.reduce((sum, v) => sum + (v ? 1 : 0), 0));
    }
    paint(canvas, planes);
    drawBoxes(svg, output, image.width);
    return h(
      'div',
      { class: 'result-grid' },
      box,
      detectionTable(output, { title: 'mask pixels', cell: (i) => areas[i] }),
    );
  }
  if (task === 'semantic-segmentation') {
    let ids;
    if (Array.isArray(output.preds) && output.preds[0] && 'counts' in output.preds[0]) {
      ids = new Uint16Array(image.width * image.height);
      for (const m of output.preds) {
        const plane = await decodePlane(m, image.width, image.height);
        for (let i = 0; i < plane.length; i++) if (plane[i]) ids[i] = m.class;
      }
    } else {
      ids = await decodePlane(output.preds, image.width, image.height);
    }
    /** @type {Map<number, number>} */
    const counts = new Map();
    for (const v of ids) counts.set(v, (counts.get(v) ?? 0) + 1);
    // Class 0 is background in both seed label sets: left clear so the image shows through.
    paint(canvas, [{ plane: ids, color: (/** @type {number} */ v) => [...rgbOf(v), 140] }]);
    const legend = h(
      'table',
      { class: 'grid compact' },
      h('thead', {}, h('tr', {}, h('th', {}, 'class'), h('th', {}, 'pixels'), h('th', {}, 'share'))),
      h(
        'tbody',
        {},
        [...counts.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(([id, n]) =>
            h(
              'tr',
              { class: 'legend-row' },
              h(
                'td',
                {},
                id
                  ? h('span', { class: 'swatch', style: `background:${colorOf(id)}` })
                  : h('span', { class: 'swatch clear' }),
                ` ${labels?.[id] ?? id} (${id})`,
              ),
              h('td', {}, n),
              h('td', {}, pct(n / ids.length)),
            ),
          ),
      ),
    );
    return h('div', { class: 'result-grid' }, box, legend);
  }
  return h('p', {}, `No drawing for task ${task}.`);
}
