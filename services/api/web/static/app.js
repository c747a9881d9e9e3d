// Shoebox's only script of its own (the CSP allows no inline script): keyboard navigation.
// A link with data-key="ArrowLeft" (or any key name) is followed when that key is pressed;
// the theme follows prefers-color-scheme in CSS, and every form works without this file.
"use strict";
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement || event.altKey || event.ctrlKey || event.metaKey) {
    return;
  }
  const toggle = document.getElementById("nav-toggle");
  if (event.key === "Escape" && toggle instanceof HTMLInputElement && toggle.checked) {
    toggle.checked = false;
    return;
  }
  const link = document.querySelector(`a[data-key="${CSS.escape(event.key)}"]`);
  if (link instanceof HTMLAnchorElement) {
    event.preventDefault();
    link.click();
  }
});
