// The explorer page's behaviour: it recomputes im2col, the GEMM and col2im for the controls'
// configuration, draws the views and links them. im2col/explorer.py inlines it into the page after
// explorer_args.js, both inside one function scope (so neither leaks a global but im2colExplorer).
const D = JSON.parse(document.getElementById("im2col-data").textContent);
const $ = (s) => document.querySelector(s);
const ctl = (n) => document.querySelector('[data-control="' + n + '"]');
const X = D.x, C = X.length, H = X[0].length, W = X[0][0].length;
const W0 = D.w, K = W0.length, Cg = W0[0].length, G = D.groups;
const kh0 = W0[0][0].length, kw0 = W0[0][0][0].length;
let M = null;            // the current model (sizes and every computed array)
let pinned = null;       // [kind, args] kept by a click
let lit = [];            // elements carrying hl / src
let anim = {on: false, l: -1, timer: null};
let partial = null;      // col2im sums so far while the animation runs

// Kernels of another size: the original resized by nearest neighbour, so edges stay edges.
function weightsFor(kh, kw) {
  if (kh === kh0 && kw === kw0) return W0;
  const pick = (i, n, n0) => Math.min(n0 - 1, Math.max(0, Math.round((i + 0.5) * n0 / n - 0.5)));
  return W0.map((wk) => wk.map((wc) => {
    const out = [];
    for (let i = 0; i < kh; i++) { const row = []; for (let j = 0; j < kw; j++) row.push(wc[pick(i, kh, kh0)][pick(j, kw, kw0)]); out.push(row); }
    return out;
  }));
}

function configure() {
  const k = parsePair(ctl("kernel").value, "kernel size", 1);
  const s = parsePair(ctl("stride").value, "stride", 1);
  const d = parsePair(ctl("dilation").value, "dilation", 1);
  const p = parsePadding(ctl("padding").value, k, d, s);
  const sizes = [H, W], names = ["OH", "OW"], ins = ["H", "W"], out = [], lines = [];
  // Twin of _geometry.span and out_sizes (the page cannot import Python); tests/test_explorer.py checks them.
  for (let a = 0; a < 2; a++) {
    const span = d[a] * (k[a] - 1) + 1;
    const o = Math.floor((sizes[a] + p[a][0] + p[a][1] - span) / s[a]) + 1;
    lines.push(names[a] + " = (" + ins[a] + " + before + after − d·(k − 1) − 1) // s + 1 = (" + sizes[a] + " + " + p[a][0] + " + " + p[a][1] + " − " + d[a] + "·(" + k[a] + " − 1) − 1) // " + s[a] + " + 1 = " + o);
    if (o < 1) {
      throw Object.assign(new Error("output " + (a ? "width" : "height") + " = " + o + ", but it must be at least 1: the kernel spans " + span + " pixels (dilation·(kernel − 1) + 1) and the padded input only " + (sizes[a] + p[a][0] + p[a][1])), {lines});
    }
    out.push(o);
  }
  const m = {kh: k[0], kw: k[1], sh: s[0], sw: s[1], dh: d[0], dw: d[1], pt: p[0][0], pb: p[0][1], pl: p[1][0], pr: p[1][1],
    OH: out[0], OW: out[1], lines};
  m.Hp = H + m.pt + m.pb; m.Wp = W + m.pl + m.pr; m.L = m.OH * m.OW; m.R = C * m.kh * m.kw; m.Rg = Cg * m.kh * m.kw; m.Kg = K / G;
  const cells = C * m.Hp * m.Wp + m.R * m.L + K * m.L + 2 * K * m.Rg;
  if (cells > D.maxCells)
    throw Object.assign(new Error("this configuration would draw " + cells.toLocaleString("en") + " cells (padded input " + C + "×" + m.Hp + "×" + m.Wp + ", unrolled matrix " + m.R + " × " + m.L + ", outputs " + K + "×" + m.L + "), more than the explorer's limit of " + D.maxCells.toLocaleString("en") + ": try a larger stride or a smaller padding"), {lines});
  return m;
}

function compute(m) {
  m.w = weightsFor(m.kh, m.kw);
  const n = m.R * m.L;
  m.cols = new Float64Array(n); m.pad = new Uint8Array(n); m.sh_ = new Int32Array(n); m.sw_ = new Int32Array(n);
  m.copies = new Map();  // "c,y,x" → [cell index, ...]
  for (let r = 0; r < m.R; r++) {
    const c = Math.floor(r / (m.kh * m.kw)), i = Math.floor(r / m.kw) % m.kh, j = r % m.kw;
    for (let l = 0; l < m.L; l++) {
      const oh = Math.floor(l / m.OW), ow = l % m.OW, idx = r * m.L + l;
      const h = oh * m.sh - m.pt + i * m.dh, w = ow * m.sw - m.pl + j * m.dw;
      const inside = h >= 0 && h < H && w >= 0 && w < W;
      m.cols[idx] = inside ? X[c][h][w] : 0; m.pad[idx] = inside ? 0 : 1; m.sh_[idx] = h; m.sw_[idx] = w;
      const key = c + "," + h + "," + w;
      if (!m.copies.has(key)) m.copies.set(key, []);
      m.copies.get(key).push(idx);
    }
  }
  m.wm = m.w.map((wk) => wk.flat(2));           // K × Rg, rows in the unrolled rows' order
  m.out = [];
  for (let k = 0; k < K; k++) {
    const q = Math.floor(k / m.Kg), row = new Float64Array(m.L);
    for (let l = 0; l < m.L; l++) { let s = 0; for (let j = 0; j < m.Rg; j++) s += m.wm[k][j] * m.cols[(q * m.Rg + j) * m.L + l]; row[l] = s; }
    m.out.push(row);
  }
  // What col2im folds: the columns themselves, or Wᵀ·y (the transposed convolution of the output).
  const mode = ctl("mode").value;
  m.mode = mode;
  if (mode === "transposed") {
    m.fcols = new Float64Array(n);
    for (let r = 0; r < m.R; r++) {
      const q = Math.floor(r / m.Rg), j = r % m.Rg;
      for (let l = 0; l < m.L; l++) { let s = 0; for (let kk = q * m.Kg; kk < (q + 1) * m.Kg; kk++) s += m.wm[kk][j] * m.out[kk][l]; m.fcols[r * m.L + l] = s; }
    }
  } else m.fcols = m.cols;
  m.fold = new Float64Array(C * H * W); m.count = new Int32Array(H * W);
  for (let idx = 0; idx < n; idx++) if (!m.pad[idx]) {
    const c = Math.floor(Math.floor(idx / m.L) / (m.kh * m.kw));
    m.fold[(c * H + m.sh_[idx]) * W + m.sw_[idx]] += m.fcols[idx];
    if (c === 0) m.count[m.sh_[idx] * W + m.sw_[idx]] += 1;
  }
  return m;
}

// --- drawing --------------------------------------------------------------------------------------
function scale(vals) {
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (lo < 0) { const a = Math.max(-lo, hi) || 1; return {div: true, lo: -a, hi: a}; }
  return {div: false, lo: 0, hi: hi || 1};
}
function color(v, sc) {
  if (sc.div) {          // blue – white – red
    const t = Math.max(-1, Math.min(1, v / sc.hi));
    const a = Math.abs(t), base = t < 0 ? [33, 102, 172] : [178, 24, 43];
    const rgb = base.map((b) => Math.round(255 + (b - 255) * a));
    return ["rgb(" + rgb.join(",") + ")", a > 0.55 ? "#fff" : "#111"];
  }
  const t = Math.max(0, Math.min(1, (v - sc.lo) / (sc.hi - sc.lo)));
  const g = Math.round(20 + 235 * t);
  return ["rgb(" + g + "," + g + "," + g + ")", t > 0.55 ? "#111" : "#fff"];
}
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
function clampSize(avail, n, lo, hi) { return Math.max(lo, Math.min(hi, Math.floor(avail / n))); }
function tickStep(size, need) { return Math.max(1, Math.ceil(need / size)); }

// A heatmap: rows × cols cells in a CSS grid, index ticks on top and left, one focusable grid.
function heatmap(o) {
  const g = el("div", "hm");
  g.tabIndex = 0;
  g.style.gridTemplateColumns = o.labelW + "px repeat(" + o.cols + "," + o.cw + "px)";
  g.style.gridTemplateRows = "20px repeat(" + o.rows + "," + o.ch + "px)";
  const cstep = o.colStep || tickStep(o.cw, 30), rstep = o.rowStep || tickStep(o.ch, 18);
  for (let c = 0; c < o.cols; c += cstep) {
    const t = el("div", "tick top", o.colLabel(c)); t.style.gridRow = "1"; t.style.gridColumn = (c + 2) + " / span " + Math.min(cstep, o.cols - c); g.appendChild(t);
  }
  for (let r = 0; r < o.rows; r += rstep) {
    const t = el("div", "tick left", o.rowLabel(r)); t.style.gridColumn = "1"; t.style.gridRow = (r + 2) + " / span 1"; g.appendChild(t);
  }
  const cells = [];
  const write = o.cw >= 34 && o.ch >= 20;
  for (let r = 0; r < o.rows; r++) for (let c = 0; c < o.cols; c++) {
    const d = el("div", "c"); d.style.gridRow = String(r + 2); d.style.gridColumn = String(c + 2);
    const [key, val, isPad] = o.cell(r, c);
    d.setAttribute(o.attr, key);
    if (isPad) d.classList.add("pad");
    else { const [bg, fg] = color(val, o.sc); d.style.background = bg; d.style.color = fg; }
    if (write) d.textContent = isPad ? "0" : fmt(val);
    d.title = o.tip(r, c);
    g.appendChild(d); cells.push(d);
  }
  g._cells = cells; g._rows = o.rows; g._cols = o.cols; g._cur = -1;
  return g;
}

function view(title, note, wide) {
  const v = el("section", "view" + (wide ? " wide" : ""));
  v.appendChild(el("h2", null, title));
  if (note) { const p = el("p", "note"); p.innerHTML = note; v.appendChild(p); }
  return v;
}
function legend(items) {
  const p = el("p", "legend");
  p.innerHTML = items.map(([cls, txt]) => '<span class="sw ' + cls + '"></span>' + txt).join("");
  return p;
}

const R_ = {};  // element lookups of the current drawing
function draw() {
  const V = $("#views"); V.innerHTML = "";
  const m = M;
  const rowLab = (r) => { const c = Math.floor(r / (m.kh * m.kw)), i = Math.floor(r / m.kw) % m.kh, j = r % m.kw; return "(" + c + "," + i + "," + j + ")"; };
  m.rowLab = rowLab;
  // The padded input, every channel.
  const vin = view("Padded input", "image " + D.image + (D.N > 1 ? " of " + D.N : "") + ": " + C + "×" + H + "×" + W + (m.pt + m.pb + m.pl + m.pr ? "; padding hatched green (reads 0), at indices < 0 or ≥ the size" : ", no padding"));
  const maps = el("div", "maps"); vin.appendChild(maps);
  const cs = clampSize(C > 1 ? 280 : 340, Math.max(m.Hp, m.Wp), 8, 40);
  const scx = scale(X.flat(2));
  R_.input = [];
  for (let c = 0; c < C; c++) {
    const f = el("figure", "map"); f.appendChild(el("figcaption", null, "channel " + c));
    const g = heatmap({rows: m.Hp, cols: m.Wp, cw: cs, ch: cs, labelW: 34, attr: "data-input", sc: scx,
      colLabel: (x) => String(x - m.pl), rowLabel: (y) => String(y - m.pt),
      cell: (y, x) => { const yy = y - m.pt, xx = x - m.pl, inside = yy >= 0 && yy < H && xx >= 0 && xx < W; return [c + "," + yy + "," + xx, inside ? X[c][yy][xx] : 0, !inside]; },
      tip: (y, x) => "(" + c + ", " + (y - m.pt) + ", " + (x - m.pl) + ")"});
    g._kind = "input"; g._chan = c; f.appendChild(g); maps.appendChild(f); R_.input.push(g);
  }
  vin.appendChild(legend([["pad", "padding (0)"], ["hl", "linked cells"], ["src", "the pointed-at cell's source"]]));
  V.appendChild(vin);
  // The kernels.
  const vk = view("Kernels", m.kh !== kh0 || m.kw !== kw0 ? "resized from the original " + kh0 + "×" + kw0 + " (nearest neighbour)" : K + " kernel(s), " + Cg + " channel(s) each; this is cross-correlation: the kernel is not flipped");
  const km = el("div", "maps"); vk.appendChild(km);
  const kcs = clampSize(150, Math.max(m.kh, m.kw), 14, 40);
  const sck = scale(m.wm.flat());
  R_.kernel = [];
  for (let k = 0; k < K; k++) for (let c = 0; c < Cg; c++) {
    const f = el("figure", "map"); f.appendChild(el("figcaption", null, (D.names ? D.names[k] : "kernel " + k) + (Cg > 1 ? ", ch " + c : "")));
    const g = heatmap({rows: m.kh, cols: m.kw, cw: kcs, ch: kcs, labelW: 22, attr: "data-kernel", sc: sck,
      colLabel: String, rowLabel: String, cell: (i, j) => [k + "," + c + "," + i + "," + j, m.w[k][c][i][j], false],
      tip: (i, j) => "kernel " + k + ", channel " + c + ", tap (" + i + ", " + j + ") = " + fmt(m.w[k][c][i][j])});
    g._kind = "kernel"; g._k = k; g._c = c; f.appendChild(g); km.appendChild(f); R_.kernel.push(g);
  }
  V.appendChild(vk);
  // The output maps.
  const vo = view("Output maps", K + " map(s) of " + m.OH + "×" + m.OW + ": output (k, oh, ow) = weight row k · column oh·OW + ow");
  const om = el("div", "maps"); vo.appendChild(om);
  const ocs = clampSize(K > 2 ? 170 : 280, Math.max(m.OH, m.OW), 6, 40);
  const sco = scale(m.out.map((r) => Array.from(r)).flat());
  R_.output = [];
  for (let k = 0; k < K; k++) {
    const f = el("figure", "map"); f.appendChild(el("figcaption", null, D.names ? D.names[k] : "kernel " + k));
    const g = heatmap({rows: m.OH, cols: m.OW, cw: ocs, ch: ocs, labelW: 26, attr: "data-output", sc: sco,
      colLabel: String, rowLabel: String, cell: (oh, ow) => [k + "," + oh + "," + ow, m.out[k][oh * m.OW + ow], false],
      tip: (oh, ow) => "output (" + k + ", " + oh + ", " + ow + ") = " + fmt(m.out[k][oh * m.OW + ow])});
    g._kind = "output"; g._k = k; f.appendChild(g); om.appendChild(f); R_.output.push(g);
  }
  V.appendChild(vo);
  // The unrolled matrix.
  const vu = view("Unrolled matrix (im2col)" + (m.mode === "transposed" ? " — here Wᵀ·y, the columns the transposed convolution folds" : ""),
    m.R + " × " + m.L + ": row r = c·kh·kw + i·kw + j is the tap (c, i, j); column l = oh·OW + ow is one window, one output position. " +
    "Column ticks mark the first column of each output row.", true);
  const uw = clampSize(1280, m.L, 6, 44), uh = clampSize(m.R > 30 ? 480 : 330, m.R, 6, 36);
  const scu = m.mode === "transposed" ? scale(m.fcols) : scx;
  const sc = el("div", "scroll");
  const ug = heatmap({rows: m.R, cols: m.L, cw: uw, ch: uh, labelW: 70, attr: "data-cell", sc: scu,
    colStep: uw * m.OW >= 40 ? m.OW : tickStep(uw, 60) , rowStep: tickStep(uh, 17),
    colLabel: (l) => uw * m.OW >= 40 ? (uw * m.OW >= 90 ? "oh=" : "") + Math.floor(l / m.OW) : String(l), rowLabel: rowLab,
    cell: (r, l) => [r + "," + l, m.fcols[r * m.L + l], !!m.pad[r * m.L + l]],
    tip: (r, l) => "cell (" + r + ", " + l + ")"});
  ug._kind = "cell"; R_.cells = ug;
  sc.appendChild(ug); vu.appendChild(sc); V.appendChild(vu);
  // The weight matrix.
  const vw = view("Weight matrix", K + " × " + m.Rg + ": kernel k flattened into row k, in the unrolled rows' order (c, i, j)");
  const ww = clampSize(560, m.Rg, 8, 44), wh = clampSize(200, K, 18, 36);
  const wg = heatmap({rows: K, cols: m.Rg, cw: ww, ch: wh, labelW: 30, attr: "data-weight", sc: sck,
    colStep: tickStep(ww, 60), rowStep: 1, colLabel: (j) => rowLab(j), rowLabel: String,
    cell: (k, j) => [k + "," + j, m.wm[k][j], false], tip: (k, j) => "weight (" + k + ", " + j + ") = " + fmt(m.wm[k][j])});
  wg._kind = "weight"; R_.weight = wg;
  vw.appendChild(wg); V.appendChild(vw);
  // The GEMM for one output: weight row k × column l.
  const vg = view("GEMM, one entry", "output (k, oh, ow) = weight row k × column l = Σ w·x over the " + m.Rg + " taps");
  vg.appendChild(el("div", "gemm")); R_.gemm = vg.lastChild; V.appendChild(vg);
  // col2im: each column's values added back to the pixels they came from.
  if (m.mode !== "forward") {
    const vf = view(m.mode === "col2im" ? "col2im: the columns folded back" : "Transposed convolution: col2im(Wᵀ·y)",
      (m.mode === "col2im" ? "Every cell of the unrolled matrix is added back to the pixel it was copied from, so each pixel becomes (copy count) × its value. "
        : "Wᵀ·y spreads each output back over its window's taps; col2im adds each column back to its pixels: the transposed convolution (the input gradient). ") +
      "Padding cells are dropped. Play to watch the columns being added one by one.", true);
    const fm = el("div", "maps"); vf.appendChild(fm);
    const fcs = clampSize(C > 1 ? 260 : 360, Math.max(H, W), 8, 44);
    const scf = scale(m.fold), scn = {div: false, lo: 0, hi: Math.max(1, ...m.count)};
    const fc = el("figure", "map"); fc.appendChild(el("figcaption", null, "overlap count: how many columns hold each pixel"));
    const cg = heatmap({rows: H, cols: W, cw: fcs, ch: fcs, labelW: 26, attr: "data-count", sc: scn, colLabel: String, rowLabel: String,
      cell: (y, x) => [y + "," + x, m.count[y * W + x], false], tip: (y, x) => "pixel (" + y + ", " + x + ") is in " + m.count[y * W + x] + " window(s)"});
    cg._kind = "count"; fc.appendChild(cg); fm.appendChild(fc); R_.count = cg;
    R_.fold = [];
    for (let c = 0; c < C; c++) {
      const f = el("figure", "map"); f.appendChild(el("figcaption", null, "folded, channel " + c));
      const g = heatmap({rows: H, cols: W, cw: fcs, ch: fcs, labelW: 26, attr: "data-fold", sc: scf, colLabel: String, rowLabel: String,
        cell: (y, x) => [c + "," + y + "," + x, m.fold[(c * H + y) * W + x], false], tip: (y, x) => "(" + c + ", " + y + ", " + x + ")"});
      g._kind = "fold"; g._chan = c; f.appendChild(g); fm.appendChild(f); R_.fold.push(g);
    }
    R_.scf = scf; R_.scn = scn;
    V.appendChild(vf);
  } else { R_.fold = []; R_.count = null; }
  const pos = $('[data-role="position"]'); pos.max = String(m.L - 1);
}

// --- linking ----------------------------------------------------------------------------------------
function inputEl(c, h, w) { return R_.input[c]._cells[(h + M.pt) * M.Wp + (w + M.pl)]; }
function light(e, cls) { if (e) { e.classList.add(cls || "hl"); lit.push(e); } }
function clear() { for (const e of lit) e.classList.remove("hl", "src"); lit = []; }
function info(html) { $("#info").innerHTML = html; }
function srcText(idx) {
  const m = M, r = Math.floor(idx / m.L), c = Math.floor(r / (m.kh * m.kw));
  const where = "(" + c + ", " + m.sh_[idx] + ", " + m.sw_[idx] + ")";
  return m.pad[idx] ? "padding at " + where + ", reads 0" : "input pixel " + where + " = " + fmt(m.cols[idx]);
}

function linkOutput(k, oh, ow) {
  const m = M, l = oh * m.OW + ow, q = Math.floor(k / m.Kg);
  light(R_.output[k]._cells[l]);
  const terms = [];
  let total = 0;
  for (let j = 0; j < m.Rg; j++) {
    const r = q * m.Rg + j, idx = r * m.L + l;
    light(R_.cells._cells[idx]);
    light(inputEl(Math.floor(r / (m.kh * m.kw)), m.sh_[idx], m.sw_[idx]));
    light(R_.weight._cells[k * m.Rg + j]);
    light(R_.kernel[k * Cg + Math.floor(j / (m.kh * m.kw))]._cells[j % (m.kh * m.kw)]);
    const w = m.wm[k][j], x = m.cols[idx];
    total += w * x;
    terms.push("(" + fmt(w) + ")·" + (m.pad[idx] ? "0" : "(" + fmt(x) + ")"));
  }
  scrollToCol(l);
  drawGemm(k, l);
  info("<b>output (" + k + ", " + oh + ", " + ow + ")</b> = weight row " + k + " · column " + l + " (window at padded (" + oh * m.sh + ", " + ow * m.sw + ")): " +
    '<span class="dot">Σ w·x = ' + terms.join(" + ") + " = " + fmt(m.out[k][l]) + "</span>");
}
function linkInput(c, y, x) {
  const m = M, list = m.copies.get(c + "," + y + "," + x) || [];
  light(inputEl(c, y, x), "src");
  const ls = new Set();
  for (const idx of list) { light(R_.cells._cells[idx]); ls.add(idx % m.L); }
  const q = Math.floor(c / Cg);
  for (const l of ls) for (let k = q * m.Kg; k < (q + 1) * m.Kg; k++) light(R_.output[k]._cells[l]);
  const inside = y >= 0 && y < H && x >= 0 && x < W;
  const shown = list.slice(0, 12).map((i) => "(" + Math.floor(i / m.L) + "," + (i % m.L) + ")").join(" ");
  info("<b>" + (inside ? "input pixel (" + c + ", " + y + ", " + x + ") = " + fmt(X[c][y][x]) : "padding at (" + c + ", " + y + ", " + x + "), reads 0") + "</b>: copied <b>" + list.length +
    " time" + (list.length === 1 ? "" : "s") + "</b> into the unrolled matrix" + (list.length ? ", cells (r,l) " + shown + (list.length > 12 ? " …" : "") : " (no window reaches it)") +
    "; it feeds " + ls.size + " output position(s). The matrix holds " + m.R * m.L + " values for " + C * H * W + " pixels: " + (m.R * m.L / (C * H * W)).toFixed(2) + "× the input.");
}
function linkCell(r, l) {
  const m = M, idx = r * m.L + l, c = Math.floor(r / (m.kh * m.kw));
  light(R_.cells._cells[idx], "src");
  light(inputEl(c, m.sh_[idx], m.sw_[idx]));
  const q = Math.floor(c / Cg);
  for (let k = q * m.Kg; k < (q + 1) * m.Kg; k++) light(R_.output[k]._cells[l]);
  if (R_.fold.length && !m.pad[idx]) light(R_.fold[c]._cells[m.sh_[idx] * W + m.sw_[idx]]);
  info("<b>cell (" + r + ", " + l + ")</b> of the unrolled matrix: row " + r + " = tap " + m.rowLab(r) + ", column " + l + " = output (" + Math.floor(l / m.OW) + ", " + (l % m.OW) + "). " +
    (m.mode === "transposed" ? "Holds Wᵀ·y = " + fmt(m.fcols[idx]) + "; it adds into " : "Copies ") + srcText(idx) + ".");
}
function linkWeight(k, j) {
  const m = M, q = Math.floor(k / m.Kg);
  light(R_.weight._cells[k * m.Rg + j], "src");
  light(R_.kernel[k * Cg + Math.floor(j / (m.kh * m.kw))]._cells[j % (m.kh * m.kw)]);
  for (let l = 0; l < m.L; l++) light(R_.cells._cells[(q * m.Rg + j) * m.L + l]);
  info("<b>weight (" + k + ", " + j + ")</b> = " + fmt(m.wm[k][j]) + ": kernel " + k + ", tap " + m.rowLab(j) + "; it multiplies row " + (q * m.Rg + j) + " of the unrolled matrix, in every column.");
}
function linkFold(c, y, x) {
  const m = M, list = (m.copies.get(c + "," + y + "," + x) || []);
  light(R_.fold[c]._cells[y * W + x], "src");
  light(inputEl(c, y, x));
  for (const idx of list) light(R_.cells._cells[idx]);
  const terms = list.map((i) => fmt(m.fcols[i]));
  info("<b>folded pixel (" + c + ", " + y + ", " + x + ")</b> = sum of the " + list.length + " cells that came from it: <span class=\"dot\">" + (terms.join(" + ") || "0") + " = " + fmt(m.fold[(c * H + y) * W + x]) + "</span>" +
    (m.mode === "col2im" ? " = " + list.length + " × " + fmt(X[c][y][x]) : ""));
}
function linkCount(y, x) { linkFold(0, y, x); }
const LINK = {output: linkOutput, input: linkInput, cell: linkCell, weight: linkWeight, fold: linkFold, count: linkCount,
  kernel: (k, c, i, j) => linkWeight(k, (c * M.kh + i) * M.kw + j)};
const ATTR = {output: "data-output", input: "data-input", cell: "data-cell", weight: "data-weight", fold: "data-fold", count: "data-count", kernel: "data-kernel"};

function select(sel) { clear(); if (sel) LINK[sel[0]](...sel[1]); else info("Point at a cell: an output, an input pixel, a matrix cell or a weight."); }
function fromEl(t) {
  for (const kind in ATTR) { const v = t.getAttribute && t.getAttribute(ATTR[kind]); if (v != null) return [kind, v.split(",").map(Number)]; }
  return null;
}
function scrollToCol(l) {
  const sc = R_.cells.parentElement, x = 70 + l * parseFloat(R_.cells.style.gridTemplateColumns.split("repeat(")[1].split(",")[1]);
  if (x < sc.scrollLeft + 80 || x > sc.scrollLeft + sc.clientWidth - 80) sc.scrollLeft = Math.max(0, x - sc.clientWidth / 2);
}
function drawGemm(k, l) {
  const m = M, q = Math.floor(k / m.Kg), box = R_.gemm; box.innerHTML = "";
  const cw = clampSize(560, m.Rg, 10, 44);
  const scw = scale(m.wm.flat()), scx = scale(X.flat(2));
  const strip = (name, vals, pads, sc, attr) => {
    const g = heatmap({rows: 1, cols: m.Rg, cw, ch: 30, labelW: 110, attr, sc, colStep: tickStep(cw, 60), rowStep: 1,
      colLabel: (j) => m.rowLab(j), rowLabel: () => name, cell: (_, j) => ["" + j, vals[j], pads[j]], tip: (_, j) => fmt(vals[j])});
    g.tabIndex = -1; return g;
  };
  const wv = m.wm[k], xv = [], xp = [], pv = [];
  for (let j = 0; j < m.Rg; j++) { const idx = (q * m.Rg + j) * m.L + l; xv.push(m.cols[idx]); xp.push(!!m.pad[idx]); pv.push(wv[j] * m.cols[idx]); }
  box.appendChild(strip("weight row " + k, wv, wv.map(() => false), scw, "data-gemm-w"));
  box.appendChild(strip("column " + l, xv, xp, scx, "data-gemm-x"));
  box.appendChild(strip("w·x", pv, pv.map(() => false), scale(pv), "data-gemm-p"));
  box.appendChild(el("p", "eq", "sum = " + fmt(m.out[k][l])));
}

function wire() {
  const V = $("#views");
  V.addEventListener("mouseover", (ev) => { if (pinned || anim.on) return; const s = fromEl(ev.target); if (s) select(s); });
  V.addEventListener("mouseleave", () => { if (!anim.on) select(pinned); });
  V.addEventListener("click", (ev) => {
    const s = fromEl(ev.target); if (!s) return;
    stopAnim(false);
    pinned = pinned && pinned[0] === s[0] && pinned[1].join() === s[1].join() ? null : s;
    select(pinned || s);
  });
  V.addEventListener("keydown", (ev) => {
    const g = ev.target.closest && ev.target.closest(".hm"); if (!g || !g._cells) return;
    let cur = g._cur < 0 ? 0 : g._cur, r = Math.floor(cur / g._cols), c = cur % g._cols;
    if (ev.key === "ArrowLeft") c = Math.max(0, c - 1); else if (ev.key === "ArrowRight") c = Math.min(g._cols - 1, c + 1);
    else if (ev.key === "ArrowUp") r = Math.max(0, r - 1); else if (ev.key === "ArrowDown") r = Math.min(g._rows - 1, r + 1);
    else if (ev.key === "Enter" || ev.key === " ") { const s = fromEl(g._cells[cur]); pinned = s; select(s); ev.preventDefault(); return; }
    else if (ev.key === "Escape") { pinned = null; select(null); return; }
    else return;
    ev.preventDefault();
    if (g._cur >= 0) g._cells[g._cur].classList.remove("cur");
    g._cur = r * g._cols + c; g._cells[g._cur].classList.add("cur");
    if (!pinned) select(fromEl(g._cells[g._cur]));
  });
  V.addEventListener("focusin", (ev) => {
    const g = ev.target; if (!g._cells || g._cur >= 0) return;
    g._cur = 0; g._cells[0].classList.add("cur"); if (!pinned) select(fromEl(g._cells[0]));
  });
  for (const n of ["kernel", "stride", "padding", "dilation", "mode"]) ctl(n).addEventListener("change", rebuild);
  $('[data-role="play"]').addEventListener("click", () => (anim.timer ? stopAnim(true) : play()));
  $('[data-role="step"]').addEventListener("click", () => { pauseAnim(); stepTo(anim.on ? anim.l + 1 : 0); });
  $('[data-role="step-back"]').addEventListener("click", () => { pauseAnim(); stepTo(anim.on ? anim.l - 1 : 0); });
  $('[data-role="show-all"]').addEventListener("click", () => stopAnim(false));
  $('[data-role="position"]').addEventListener("input", (ev) => { pauseAnim(); stepTo(+ev.target.value); });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { pinned = null; stopAnim(false); select(null); } });
}

// --- the animation: slide the window, fill the columns one by one --------------------------------------
function beginAnim() {
  if (anim.on || !M) return;
  anim.on = true; anim.l = -1; pinned = null;
  for (const e of R_.cells._cells) e.classList.add("unf");
  for (const g of R_.output) for (const e of g._cells) e.classList.add("unf");
  if (R_.fold.length) { partial = {fold: new Float64Array(C * H * W), count: new Int32Array(H * W)}; for (const g of [...R_.fold, R_.count]) for (const e of g._cells) e.classList.add("unf"); }
}
function stepTo(l) {
  beginAnim();
  const m = M; l = Math.max(0, Math.min(m.L - 1, l));
  // Fill or empty the columns between the old position and the new one.
  const lo = Math.min(anim.l, l), hi = Math.max(anim.l, l), fill = l > anim.l;
  for (let c = lo + 1; c <= hi; c++) {
    if (c < 0) continue;
    const col = fill ? c : c;  // columns lo+1..hi change state
    for (let r = 0; r < m.R; r++) R_.cells._cells[r * m.L + col].classList.toggle("unf", !fill);
    for (const g of R_.output) g._cells[col].classList.toggle("unf", !fill);
    if (partial) foldColumn(col, fill ? 1 : -1);
  }
  if (!fill && anim.l >= 0 && l === anim.l) {}
  anim.l = l; $('[data-role="position"]').value = String(l);
  const k = pinned && pinned[0] === "output" ? pinned[1][0] : (D.highlight[0] < K ? D.highlight[0] : 0);
  clear(); linkOutput(k, Math.floor(l / m.OW), l % m.OW);
}
function foldColumn(l, sign) {
  const m = M;
  for (let r = 0; r < m.R; r++) {
    const idx = r * m.L + l; if (m.pad[idx]) continue;
    const c = Math.floor(r / (m.kh * m.kw)), p = m.sh_[idx] * W + m.sw_[idx];
    partial.fold[c * H * W + p] += sign * m.fcols[idx];
    if (c === 0) partial.count[p] += sign;
    const fe = R_.fold[c]._cells[p], ce = R_.count._cells[p];
    const [bg, fg] = color(partial.fold[c * H * W + p], R_.scf); fe.style.background = bg; fe.style.color = fg; fe.classList.toggle("unf", partial.count[p] === 0);
    if (fe.textContent) fe.textContent = fmt(partial.fold[c * H * W + p]);
    const [b2, f2] = color(partial.count[p], R_.scn); ce.style.background = b2; ce.style.color = f2; ce.classList.toggle("unf", partial.count[p] === 0);
    if (ce.textContent) ce.textContent = String(partial.count[p]);
  }
}
function play() {
  if (!M) return;
  if (!anim.on || anim.l >= M.L - 1) { stopAnim(false); beginAnim(); }
  $('[data-role="play"]').textContent = "❚❚ pause";
  const dt = Math.max(25, Math.min(600, 12000 / M.L));
  anim.timer = setInterval(() => { if (anim.l >= M.L - 1) { pauseAnim(); return; } stepTo(anim.l + 1); }, dt);
}
function pauseAnim() { if (anim.timer) clearInterval(anim.timer); anim.timer = null; $('[data-role="play"]').textContent = "▶ play"; }
function stopAnim(keep) {
  pauseAnim();
  if (keep || !anim.on) return;
  anim.on = false; partial = null;
  for (const e of document.querySelectorAll(".unf")) e.classList.remove("unf");
  if (M && R_.fold.length) draw();
}

function rebuild() {
  stopAnim(false); pinned = null; clear();
  const err = $("#error");
  try {
    M = compute(configure());
  } catch (e) {
    M = null;
    err.hidden = false; err.textContent = "Cannot draw this configuration: " + e.message;
    $("#formula").textContent = (e.lines || []).join("\n");
    $('[data-role="output-size"]').textContent = "—";
    $("#views").innerHTML = ""; info("Change a control to get back to a valid configuration.");
    return;
  }
  err.hidden = true;
  $("#formula").textContent = M.lines.join("\n") + "\nunrolled matrix: C·kh·kw × OH·OW = " + C + "·" + M.kh + "·" + M.kw + " × " + M.OH + "·" + M.OW + " = " + M.R + " × " + M.L;
  $('[data-role="output-size"]').textContent = M.OH + "×" + M.OW;
  draw();
  const [k, oh, ow] = D.highlight;
  if (k < K && oh < M.OH && ow < M.OW) select(["output", [k, oh, ow]]); else select(null);
}

function init() {
  ctl("kernel").value = pairText([kh0, kw0]);
  ctl("stride").value = pairText(D.stride);
  ctl("dilation").value = pairText(D.dilation);
  const p = D.padding;
  ctl("padding").value = p[0][0] === p[0][1] && p[1][0] === p[1][1] ? pairText([p[0][0], p[1][0]]) : p[0].concat(p[1]).join(",");
  wire(); rebuild();
}
window.im2colExplorer = {rebuild, stepTo, play, model: () => M};
init();
