// The explorer page's argument parsing and number formatting: pure functions of their arguments,
// with no page state. im2col/explorer.py inlines this file before explorer.js, both inside one
// function scope. parsePadding is the twin of im2col/_geometry.parse_padding (tests/test_explorer.py
// runs both in node and checks they agree).
function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000 || (a < 0.01 && a > 0)) return v.toPrecision(3);
  return String(Number(v.toFixed(a >= 100 ? 1 : 2)));
}
function pairText(p) { return p[0] === p[1] ? String(p[0]) : p[0] + "x" + p[1]; }

function parsePair(text, what, min) {
  const parts = String(text).trim().toLowerCase().replace(/[×,]/g, "x").split("x").map((s) => s.trim());
  if (parts.length > 2 || parts.some((s) => !/^\d+$/.test(s)))
    throw new Error(what + " must be a whole number or two separated by x (like 3 or 3x2), got '" + text + "'");
  const v = parts.map(Number);
  if (v.some((n) => n < min)) throw new Error(what + " must be at least " + min + ", got '" + text + "'");
  return v.length === 1 ? [v[0], v[0]] : v;
}

// Twin of _geometry.parse_padding (+ 'full', as explain takes it); tests/test_explorer.py checks they agree.
function parsePadding(text, k, d, s) {
  const t = String(text).trim().toLowerCase();
  if (t === "valid") return [[0, 0], [0, 0]];
  if (t === "same") {
    if (s[0] !== 1 || s[1] !== 1)
      throw new Error("padding 'same' needs stride 1 (the output keeps the input's size only then), got stride " + pairText(s));
    return [0, 1].map((a) => { const tot = d[a] * (k[a] - 1); return [Math.floor(tot / 2), tot - Math.floor(tot / 2)]; });
  }
  if (t === "full") return [0, 1].map((a) => [d[a] * (k[a] - 1), d[a] * (k[a] - 1)]);
  const four = t.split(",").map((x) => x.trim());
  if (four.length === 4 && four.every((x) => /^\d+$/.test(x)))
    return [[+four[0], +four[1]], [+four[2], +four[3]]];
  const p = parsePair(t, "padding (a number, PHxPW, same, full or valid)", 0);
  return [[p[0], p[0]], [p[1], p[1]]];
}
