// Typeset the math that pymdownx.arithmatex (generic mode) wraps in .arithmatex elements:
// inline math as \( ... \) in a span, display math as \[ ... \] in a div. KaTeX itself is
// served from the site (assets/katex/), copied there by docs/hooks/katex.py.
(function () {
  function typeset(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      if (el.dataset.typeset) return;
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      tex = tex.replace(/^\\[\(\[]/, "").replace(/\\[\)\]]$/, "");
      katex.render(tex, el, { displayMode: display, throwOnError: false, strict: "ignore" });
      el.dataset.typeset = "1";
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(function (d) { typeset(d.body || document.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { typeset(document.body); });
  }
})();
