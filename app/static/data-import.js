// Fills the import box from a chosen file, so large files need no copy and paste.
// Without JavaScript the box still takes pasted JSON.
"use strict";
for (const input of document.querySelectorAll("input[type=file][data-fills]")) {
  input.addEventListener("change", () => {
    const target = document.getElementById(input.dataset.fills);
    const file = input.files && input.files[0];
    if (!target || !file) return;
    file.text().then((text) => { target.value = text; });
  });
}
