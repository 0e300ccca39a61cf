// "Tick every user on this page": <input type="checkbox" data-tick-all="form-id"> ticks or
// unticks every checkbox that belongs to that form (rows swapped in later included).
document.addEventListener("change", function (event) {
  var all = event.target.closest("input[data-tick-all]");
  if (!all) return;
  var form = all.getAttribute("data-tick-all");
  document.querySelectorAll('input[type="checkbox"][form="' + form + '"]').forEach(function (box) {
    box.checked = all.checked;
  });
});
