// Shoebox's only script of its own (the CSP allows no inline script): keyboard navigation.
// The theme follows prefers-color-scheme in CSS; forms work without this file.
"use strict";
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) {
    return;
  }
  if (event.key === "Escape") {
    const toggle = document.getElementById("nav-toggle");
    if (toggle instanceof HTMLInputElement) toggle.checked = false;
  }
});
